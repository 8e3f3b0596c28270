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

prometheus::Counter& counter(prometheus::Registry& r, const char* name, const char* help,
                             const prometheus::Labels& labels) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add(labels);
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

FrontendMetrics::FrontendMetrics(std::string default_model)
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_total_(&prometheus::BuildCounter()
                           .Name(kRequestsTotal)
                           .Help("Requests finished, by endpoint, type and status")
                           .Register(*registry_)),
      http_requests_total_(&prometheus::BuildCounter()
                                .Name(kHttpRequestsTotal)
                                .Help("HTTP responses by status code")
                                .Register(*registry_)),
      uptime(gauge(*registry_, kUptime, "Seconds since the process started", {})) {
  if (!default_model.empty()) model(default_model);
}

FrontendMetrics::~FrontendMetrics() = default;

ModelMetrics& FrontendMetrics::model(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    // prometheus-cpp returns the existing family for a name registered again with the same type.
    it = models_
             .emplace(name, std::unique_ptr<ModelMetrics>(
                                new ModelMetrics(*registry_, *requests_total_, name)))
             .first;
  }
  return *it->second;
}

void FrontendMetrics::http_response(int status_code) {
  http_requests_total_->Add({{"code", std::to_string(status_code)}}).Increment();
}

ModelMetrics::ModelMetrics(prometheus::Registry& r,
                           prometheus::Family<prometheus::Counter>& requests, std::string name)
    : model(std::move(name)),
      inflight(gauge(r, kInflightRequests, "Requests being processed", {{"model", model}})),
      queued(
          gauge(r, kQueuedRequests, "Requests waiting for their first token", {{"model", model}})),
      disconnected_clients(prometheus::BuildCounter()
                               .Name(kDisconnectedClients)
                               .Help("Clients that went away before their response finished")
                               .Register(r)
                               .Add({{"model", model}})),
      request_duration(histogram(r, kRequestDuration, "End-to-end request time", {{"model", model}},
                                 latency_buckets())),
      time_to_first_token(histogram(r, kTimeToFirstToken, "Time to first token", {{"model", model}},
                                    latency_buckets())),
      inter_token_latency(histogram(r, kInterTokenLatency, "Time between consecutive output tokens",
                                    {{"model", model}}, latency_buckets())),
      input_tokens(histogram(r, kInputSequenceTokens, "Prompt tokens per request",
                             {{"model", model}}, token_buckets())),
      output_tokens(histogram(r, kOutputSequenceTokens, "Output tokens per request",
                              {{"model", model}}, token_buckets())),
      output_tokens_total(prometheus::BuildCounter()
                              .Name(kOutputTokensTotal)
                              .Help("Output tokens generated")
                              .Register(r)
                              .Add({{"model", model}})),
      context_length(
          gauge(r, kModelContextLength, "Maximum context length of the model", {{"model", model}})),
      max_num_seqs(
          gauge(r, kModelMaxNumSeqs, "Sequences the engine runs at once", {{"model", model}})),
      engine_running(
          gauge(r, kEngineRunning, "Sequences in the running batch", {{"model", model}})),
      engine_waiting(gauge(r, kEngineWaiting, "Sequences waiting for a slot", {{"model", model}})),
      engine_steps(counter(r, kEngineSteps, "Forward steps run by the engine", {{"model", model}})),
      engine_cancelled(counter(r, kEngineCancelled,
                               "Requests cancelled before they finished (stop strings excluded)",
                               {{"model", model}})),
      kv_total_blocks(
          gauge(r, kEngineKvTotalBlocks, "KV cache blocks in the pool", {{"model", model}})),
      kv_used_blocks(gauge(r, kEngineKvUsedBlocks,
                           "KV cache blocks referenced by running sequences", {{"model", model}})),
      prefix_queried_tokens(counter(r, kEnginePrefixQueriedTokens,
                                    "Tokens looked up in the prefix cache", {{"model", model}})),
      prefix_hit_tokens(counter(r, kEnginePrefixHitTokens, "Tokens found in the prefix cache",
                                {{"model", model}})),
      prefix_hit_rate(gauge(r, kEnginePrefixHitRate,
                            "Prefix cache hit tokens / queried tokens since start",
                            {{"model", model}})),
      preemptions(counter(r, kEnginePreemptions,
                          "Sequences preempted (KV recomputed) for lack of blocks",
                          {{"model", model}})),
      step_batch_size(
          gauge(r, kEngineStepBatchSize, "Sequences in the last forward step", {{"model", model}})),
      step_tokens(
          gauge(r, kEngineStepTokens, "Tokens in the last forward step", {{"model", model}})),
      step_seconds(
          gauge(r, kEngineStepSeconds, "Duration of the last engine step", {{"model", model}})),
      prefill_tokens(counter(r, kEnginePrefillTokens,
                             "Prompt positions computed (recomputation included)",
                             {{"model", model}})),
      step_prefill_tokens(gauge(r, kEngineStepPrefillTokens, "Prompt positions in the last step",
                                {{"model", model}})),
      queue_admissions(counter(r, kEngineQueueAdmissions, "Requests admitted from the queue",
                               {{"model", model}})),
      queue_wait_seconds(counter(r, kEngineQueueWaitSeconds,
                                 "Seconds those requests waited in the queue (sum)",
                                 {{"model", model}})),
      step_predicted_seconds(gauge(r, kEngineStepPredictedSeconds,
                                   "The step-time model's prediction for the last step",
                                   {{"model", model}})),
      step_model_samples(counter(r, kEngineStepModelSamples,
                                 "Steps the step-time model was checked against",
                                 {{"model", model}})),
      step_model_error(counter(r, kEngineStepModelError,
                               "Sum of |predicted - measured| / measured step time",
                               {{"model", model}})),
      boosted_steps(counter(r, kEngineBoostedSteps,
                            "Steps allowed past the ITL target to save a request's TTFT",
                            {{"model", model}})),
      registry_(r),
      requests_total_(requests) {
  const std::pair<const char*, const char*> disagg[] = {
      {kEngineKvTransfersPinned, "Prefill results holding KV blocks for a decode worker"},
      {kEngineKvTransferPinnedBlocks, "KV blocks held by those transfers"},
      {kEngineKvTransfersExpired, "Transfers freed by their TTL (never released)"},
      {kEngineKvImports, "Requests that decoded from another worker's KV blocks"},
      {kEngineKvImportFallbacks,
       "KV imports that failed, timed out or were refused (prefilled locally)"},
      {kEngineKvImportFetchedBlocks, "KV blocks fetched from prefill workers"},
      {kEngineKvImportReusedBlocks, "KV blocks of imports found in the local prefix cache instead"},
      {kEngineKvImportTierBlocks,
       "Of those, KV blocks onboarded from the decode worker's own host/disk tiers"},
      {kEngineKvTransferBytes, "KV bytes fetched from prefill workers"},
      {kEngineKvTransferSeconds, "Seconds spent fetching KV blocks (sum over imports)"},
      {kEngineKvDeviceImports, "KV imports copied device to device (CUDA IPC, no host copy)"},
      {kEngineKvDeviceTransferBytes, "KV bytes of those device-to-device imports"},
      {kEngineKvDeviceTransferSeconds, "Seconds of those device-to-device imports"},
      {kDisaggRemotePrefills, "Requests prefilled on a prefill worker"},
      {kDisaggLocalPrefills, "Requests prefilled on the decode worker by policy"},
      {kDisaggPrefillFailures, "Remote prefills that failed and were prefilled on the decode side"},
      {kDisaggPrefillInflight, "Remote prefills sent to prefill workers and not yet back"},
      {kDisaggPrefillQueueSize, "Prefill requests waiting for a sequence slot on a prefill worker"},
  };
  for (const auto& [name, help] : disagg) {
    const bool total = std::string_view(name).ends_with("_total");
    disagg_gauges_.push_back(total ? nullptr : &gauge(r, name, help, {{"model", model}}));
    disagg_counters_.push_back(total ? &counter(r, name, help, {{"model", model}}) : nullptr);
  }
}

void ModelMetrics::set_total(prometheus::Counter& c, double total) {
  auto [it, fresh] = last_totals_.try_emplace(&c, 0.0);
  if (total > it->second) c.Increment(total - it->second);
  it->second = total;
}

void ModelMetrics::request_done(std::string_view endpoint, RequestType type, RequestStatus status) {
  requests_total_
      .Add({{"model", model},
            {"endpoint", std::string(endpoint)},
            {"request_type", type_label(type)},
            {"status", status_label(status)}})
      .Increment();
}

void ModelMetrics::observe_engine(const engine::EngineStats& s) {
  std::lock_guard lock(observe_mu_);
  engine_running.Set(s.running);
  engine_waiting.Set(s.waiting);
  set_total(engine_steps, static_cast<double>(s.steps));
  set_total(engine_cancelled, static_cast<double>(s.cancelled));
  kv_total_blocks.Set(s.kv_total_blocks);
  kv_used_blocks.Set(s.kv_used_blocks);
  set_total(prefix_queried_tokens, static_cast<double>(s.prefix_cache_queried_tokens));
  set_total(prefix_hit_tokens, static_cast<double>(s.prefix_cache_hit_tokens));
  prefix_hit_rate.Set(s.prefix_cache_queried_tokens == 0
                          ? 0.0
                          : static_cast<double>(s.prefix_cache_hit_tokens) /
                                static_cast<double>(s.prefix_cache_queried_tokens));
  set_total(preemptions, static_cast<double>(s.preemptions));
  step_batch_size.Set(s.last_step_batch_size);
  step_tokens.Set(s.last_step_tokens);
  step_seconds.Set(s.last_step_seconds);
  set_total(prefill_tokens, static_cast<double>(s.prefill_tokens));
  step_prefill_tokens.Set(s.last_step_prefill_tokens);
  set_total(queue_admissions, static_cast<double>(s.queue_admissions));
  set_total(queue_wait_seconds, s.queue_wait_seconds);
  step_predicted_seconds.Set(s.last_step_predicted_seconds);
  set_total(step_model_samples, static_cast<double>(s.step_model_samples));
  set_total(step_model_error, s.step_model_relative_error);
  set_total(boosted_steps, static_cast<double>(s.boosted_steps));
  const double disagg[] = {static_cast<double>(s.kv_transfers_pinned),
                           static_cast<double>(s.kv_transfer_pinned_blocks),
                           static_cast<double>(s.kv_transfers_expired),
                           static_cast<double>(s.kv_imports),
                           static_cast<double>(s.kv_import_fallbacks),
                           static_cast<double>(s.kv_import_fetched_blocks),
                           static_cast<double>(s.kv_import_reused_blocks),
                           static_cast<double>(s.kv_import_tier_blocks),
                           static_cast<double>(s.kv_import_bytes),
                           s.kv_import_seconds,
                           static_cast<double>(s.kv_device_imports),
                           static_cast<double>(s.kv_import_device_bytes),
                           s.kv_import_device_seconds,
                           static_cast<double>(s.disagg_remote_prefills),
                           static_cast<double>(s.disagg_local_prefills),
                           static_cast<double>(s.disagg_prefill_failures),
                           static_cast<double>(s.disagg_prefill_inflight),
                           static_cast<double>(s.disagg_prefill_queue)};
  for (size_t i = 0; i < disagg_gauges_.size() && i < std::size(disagg); ++i) {
    if (disagg_gauges_[i] != nullptr) disagg_gauges_[i]->Set(disagg[i]);
    if (disagg_counters_[i] != nullptr) set_total(*disagg_counters_[i], disagg[i]);
  }
  for (const engine::KvTransportStats& t : s.kv_transports) {
    auto it = transports_.find(t.transport);
    if (it == transports_.end()) {
      const prometheus::Labels l{{"model", model}, {"transport", t.transport}};
      std::array<prometheus::Counter*, 4> c{
          &counter(registry_, kKvTransportFetches, "KV fetches finished per transport", l),
          &counter(registry_, kKvTransportFailures, "KV fetches failed per transport", l),
          &counter(registry_, kKvTransportBytes, "KV bytes moved per transport", l),
          &counter(registry_, kKvTransportSeconds, "Seconds of KV fetches per transport (sum)", l)};
      it = transports_.emplace(t.transport, c).first;
    }
    set_total(*it->second[0], static_cast<double>(t.fetches));
    set_total(*it->second[1], static_cast<double>(t.failures));
    set_total(*it->second[2], static_cast<double>(t.bytes));
    set_total(*it->second[3], t.seconds);
  }
  observe_tiers(s);
}

void ModelMetrics::observe_tiers(const engine::EngineStats& s) {
  struct Tier {
    const char* name;
    int64_t capacity, used;
    std::array<double, 10> totals;
  };
  const Tier tiers[] = {
      {"host",
       s.kv_tier_host_capacity_bytes,
       s.kv_tier_host_used_bytes,
       {static_cast<double>(s.kv_tier_host_offloaded_blocks),
        static_cast<double>(s.kv_tier_host_offloaded_bytes),
        static_cast<double>(s.kv_tier_host_onboarded_blocks),
        static_cast<double>(s.kv_tier_host_onboarded_bytes),
        static_cast<double>(s.kv_tier_host_lookup_blocks),
        static_cast<double>(s.kv_tier_host_hit_blocks), s.kv_tier_host_onboard_seconds,
        static_cast<double>(s.kv_tier_host_corrupt_blocks),
        static_cast<double>(s.kv_tier_host_errors), 0.0}},
      {"disk",
       s.kv_tier_disk_capacity_bytes,
       s.kv_tier_disk_used_bytes,
       {static_cast<double>(s.kv_tier_disk_offloaded_blocks),
        static_cast<double>(s.kv_tier_disk_offloaded_bytes),
        static_cast<double>(s.kv_tier_disk_onboarded_blocks),
        static_cast<double>(s.kv_tier_disk_onboarded_bytes),
        static_cast<double>(s.kv_tier_disk_lookup_blocks),
        static_cast<double>(s.kv_tier_disk_hit_blocks), s.kv_tier_disk_onboard_seconds,
        static_cast<double>(s.kv_tier_disk_corrupt_blocks),
        static_cast<double>(s.kv_tier_disk_errors),
        static_cast<double>(s.kv_tier_disk_filtered_blocks)}},
  };
  bool any = false;
  for (const Tier& t : tiers) {
    if (t.capacity <= 0) continue;
    any = true;
    auto it = tiers_.find(t.name);
    if (it == tiers_.end()) {
      const prometheus::Labels l{{"model", model}, {"tier", t.name}};
      TierSeries ts;
      ts.counters = {
          &counter(registry_, kKvTierOffloadedBlocks, "KV blocks stored into a tier", l),
          &counter(registry_, kKvTierOffloadedBytes, "KV bytes stored into a tier", l),
          &counter(registry_, kKvTierOnboardedBlocks, "KV blocks read back from a tier", l),
          &counter(registry_, kKvTierOnboardedBytes, "KV bytes read back from a tier", l),
          &counter(registry_, kKvTierLookupBlocks, "KV blocks looked up in a tier", l),
          &counter(registry_, kKvTierHitBlocks, "KV blocks found in a tier at admission", l),
          &counter(registry_, kKvTierOnboardSeconds, "Seconds reading KV blocks back (sum)", l),
          &counter(registry_, kKvTierCorruptBlocks,
                   "KV blocks whose checksum failed on read (recomputed)", l),
          &counter(registry_, kKvTierErrors, "KV tier I/O errors (block not stored or recomputed)",
                   l),
          &counter(registry_, kKvTierFilteredBlocks,
                   "KV blocks the frequency filter kept off the disk", l)};
      ts.gauges = {&gauge(registry_, kKvTierHitRate, "Blocks found / looked up in a tier", l),
                   &gauge(registry_, kKvTierUsedBytes, "KV bytes held in a tier", l),
                   &gauge(registry_, kKvTierCapacityBytes, "KV bytes a tier may hold", l)};
      it = tiers_.emplace(t.name, ts).first;
    }
    for (size_t i = 0; i < t.totals.size(); ++i) set_total(*it->second.counters[i], t.totals[i]);
    it->second.gauges[0]->Set(t.totals[4] > 0 ? t.totals[5] / t.totals[4] : 0.0);
    it->second.gauges[1]->Set(static_cast<double>(t.used));
    it->second.gauges[2]->Set(static_cast<double>(t.capacity));
  }
  if (!any) return;
  if (tier_loads_[0] == nullptr) {
    const prometheus::Labels l{{"model", model}};
    tier_loads_ = {
        &counter(registry_, kKvTierLoads, "Sequences that loaded KV blocks from a tier", l),
        &counter(registry_, kKvTierLoadTimeouts, "KV tier loads abandoned (recomputed)", l),
        &counter(registry_, kKvTierOnboardedTokens, "Prompt tokens onboarded, not computed", l),
        &counter(registry_, kKvTierRecomputedBlocks,
                 "KV blocks a tier load could not return (recomputed)", l),
        &counter(registry_, kKvTierOffloadDroppedBlocks,
                 "KV blocks not offloaded: the in-flight copy budget was used up", l)};
  }
  set_total(*tier_loads_[0], static_cast<double>(s.kv_tier_loads));
  set_total(*tier_loads_[1], static_cast<double>(s.kv_tier_load_timeouts));
  set_total(*tier_loads_[2], static_cast<double>(s.kv_tier_onboarded_tokens));
  set_total(*tier_loads_[3], static_cast<double>(s.kv_tier_recomputed_blocks));
  set_total(*tier_loads_[4], static_cast<double>(s.kv_tier_offload_dropped_blocks));
}

std::string FrontendMetrics::serialize() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

}  // namespace turbine::metrics
