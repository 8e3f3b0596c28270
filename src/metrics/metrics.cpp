#include "metrics/metrics.h"

#include <prometheus/text_serializer.h>

namespace turbine::metrics {
namespace {

using prometheus::Histogram;

Histogram::BucketBoundaries latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1,  0.25, 0.5,
          0.75,  1.0,    2.5,   5.0,  7.5,   10.0, 20.0,  40.0, 80.0};
}

Histogram::BucketBoundaries token_buckets() {
  return {1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072};
}

prometheus::Gauge& gauge(prometheus::Registry& r, const char* name, const char* help,
                         const prometheus::Labels& labels) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add(labels);
}

prometheus::Histogram& histogram(prometheus::Registry& r, const char* name, const char* help,
                                 const prometheus::Labels& labels,
                                 Histogram::BucketBoundaries buckets) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r).Add(labels,
                                                                            std::move(buckets));
}

const char* type_label(RequestType t) {
  return t == RequestType::kStream ? "stream" : "unary";
}

const char* status_label(RequestStatus s) {
  switch (s) {
    case RequestStatus::kSuccess: return "success";
    case RequestStatus::kError: return "error";
    case RequestStatus::kCancelled: return "cancelled";
  }
  return "error";
}

}  // namespace

FrontendMetrics::FrontendMetrics(std::string model)
    : registry_(std::make_shared<prometheus::Registry>()),
      model_(std::move(model)),
      requests_total_(&prometheus::BuildCounter()
                           .Name(kRequestsTotal)
                           .Help("Requests finished, by endpoint, type and status")
                           .Register(*registry_)),
      http_requests_total_(&prometheus::BuildCounter()
                                .Name(kHttpRequestsTotal)
                                .Help("HTTP responses by status code")
                                .Register(*registry_)),
      inflight(
          gauge(*registry_, kInflightRequests, "Requests being processed", {{"model", model_}})),
      queued(gauge(*registry_, kQueuedRequests, "Requests waiting for their first token",
                   {{"model", model_}})),
      disconnected_clients(prometheus::BuildCounter()
                               .Name(kDisconnectedClients)
                               .Help("Clients that went away before their response finished")
                               .Register(*registry_)
                               .Add({{"model", model_}})),
      request_duration(histogram(*registry_, kRequestDuration, "End-to-end request time",
                                 {{"model", model_}}, latency_buckets())),
      time_to_first_token(histogram(*registry_, kTimeToFirstToken, "Time to first token",
                                    {{"model", model_}}, latency_buckets())),
      inter_token_latency(histogram(*registry_, kInterTokenLatency,
                                    "Time between consecutive output tokens", {{"model", model_}},
                                    latency_buckets())),
      input_tokens(histogram(*registry_, kInputSequenceTokens, "Prompt tokens per request",
                             {{"model", model_}}, token_buckets())),
      output_tokens(histogram(*registry_, kOutputSequenceTokens, "Output tokens per request",
                              {{"model", model_}}, token_buckets())),
      output_tokens_total(prometheus::BuildCounter()
                              .Name(kOutputTokensTotal)
                              .Help("Output tokens generated")
                              .Register(*registry_)
                              .Add({{"model", model_}})),
      context_length(gauge(*registry_, kModelContextLength, "Maximum context length of the model",
                           {{"model", model_}})),
      max_num_seqs(gauge(*registry_, kModelMaxNumSeqs, "Sequences the engine runs at once",
                         {{"model", model_}})),
      engine_running(
          gauge(*registry_, kEngineRunning, "Sequences in the running batch", {{"model", model_}})),
      engine_waiting(
          gauge(*registry_, kEngineWaiting, "Sequences waiting for a slot", {{"model", model_}})),
      engine_steps(
          gauge(*registry_, kEngineSteps, "Forward steps run by the engine", {{"model", model_}})),
      engine_cancelled(gauge(*registry_, kEngineCancelled,
                             "Requests the engine stopped before they finished",
                             {{"model", model_}})),
      kv_total_blocks(gauge(*registry_, kEngineKvTotalBlocks, "KV cache blocks in the pool",
                            {{"model", model_}})),
      kv_used_blocks(gauge(*registry_, kEngineKvUsedBlocks,
                           "KV cache blocks referenced by running sequences", {{"model", model_}})),
      prefix_queried_tokens(gauge(*registry_, kEnginePrefixQueriedTokens,
                                  "Tokens looked up in the prefix cache", {{"model", model_}})),
      prefix_hit_tokens(gauge(*registry_, kEnginePrefixHitTokens,
                              "Tokens found in the prefix cache", {{"model", model_}})),
      prefix_hit_rate(gauge(*registry_, kEnginePrefixHitRate,
                            "Prefix cache hit tokens / queried tokens since start",
                            {{"model", model_}})),
      preemptions(gauge(*registry_, kEnginePreemptions,
                        "Sequences preempted (KV recomputed) for lack of blocks",
                        {{"model", model_}})),
      step_batch_size(gauge(*registry_, kEngineStepBatchSize, "Sequences in the last forward step",
                            {{"model", model_}})),
      step_tokens(gauge(*registry_, kEngineStepTokens, "Tokens in the last forward step",
                        {{"model", model_}})),
      step_seconds(gauge(*registry_, kEngineStepSeconds, "Duration of the last engine step",
                         {{"model", model_}})),
      uptime(gauge(*registry_, kUptime, "Seconds since the process started", {})) {}

void FrontendMetrics::request_done(std::string_view endpoint, RequestType type,
                                   RequestStatus status) {
  requests_total_
      ->Add({{"model", model_},
             {"endpoint", std::string(endpoint)},
             {"request_type", type_label(type)},
             {"status", status_label(status)}})
      .Increment();
}

void FrontendMetrics::http_response(int status_code) {
  http_requests_total_->Add({{"code", std::to_string(status_code)}}).Increment();
}

void FrontendMetrics::observe_engine(const engine::EngineStats& s) {
  engine_running.Set(s.running);
  engine_waiting.Set(s.waiting);
  engine_steps.Set(static_cast<double>(s.steps));
  engine_cancelled.Set(static_cast<double>(s.cancelled));
  kv_total_blocks.Set(s.kv_total_blocks);
  kv_used_blocks.Set(s.kv_used_blocks);
  prefix_queried_tokens.Set(static_cast<double>(s.prefix_cache_queried_tokens));
  prefix_hit_tokens.Set(static_cast<double>(s.prefix_cache_hit_tokens));
  prefix_hit_rate.Set(s.prefix_cache_queried_tokens == 0
                          ? 0.0
                          : static_cast<double>(s.prefix_cache_hit_tokens) /
                                static_cast<double>(s.prefix_cache_queried_tokens));
  preemptions.Set(static_cast<double>(s.preemptions));
  step_batch_size.Set(s.last_step_batch_size);
  step_tokens.Set(s.last_step_tokens);
  step_seconds.Set(s.last_step_seconds);
}

std::string FrontendMetrics::serialize() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

}  // namespace turbine::metrics
