#include "metrics/router_metrics.h"

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/text_serializer.h>

#include "metrics/metrics.h"

namespace turbine::metrics {

struct RouterMetrics::Families {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& decisions =
      prometheus::BuildCounter()
          .Name(kRouterDecisions)
          .Help("Requests routed to each worker instance (migrations included)")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& overlap_blocks =
      prometheus::BuildHistogram()
          .Name(kRouterOverlapBlocks)
          .Help("Prompt blocks cached on the chosen worker at routing time")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& prompt_blocks =
      prometheus::BuildCounter()
          .Name(kRouterPromptBlocks)
          .Help("Full prompt blocks of routed requests")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& cached_blocks =
      prometheus::BuildCounter()
          .Name(kRouterCachedBlocks)
          .Help("Of the routed prompt blocks, those cached on the chosen worker")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& indexed_blocks =
      prometheus::BuildGauge()
          .Name(kRouterIndexedBlocks)
          .Help("(worker, block) pairs in the router's KV index")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& kv_events =
      prometheus::BuildCounter()
          .Name(kRouterKvEvents)
          .Help("KV cache events received from the workers")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& cached_tokens =
      prometheus::BuildHistogram()
          .Name(kFrontendCachedTokens)
          .Help("Prompt tokens cached on the chosen worker at routing time")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& active_decode_blocks =
      prometheus::BuildGauge()
          .Name(kWorkerActiveDecodeBlocks)
          .Help("The router's view of a worker's active decode blocks (unique blocks)")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& active_prefill_tokens =
      prometheus::BuildGauge()
          .Name(kWorkerActivePrefillTokens)
          .Help("The router's view of a worker's prefill tokens not yet computed")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& migrations =
      prometheus::BuildCounter()
          .Name(kModelMigrations)
          .Help("Requests sent to another worker after theirs refused or was lost")
          .Register(*registry);
};

namespace {

prometheus::Histogram::BucketBoundaries block_buckets() {
  return {0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
}

prometheus::Histogram::BucketBoundaries cached_token_buckets() {
  return {0, 16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072};
}

class Observer final : public router::RouterObserver {
 public:
  Observer(std::shared_ptr<RouterMetrics::Families> f, std::string model)
      : f_(std::move(f)),
        model_(std::move(model)),
        overlap_blocks_(f_->overlap_blocks.Add({{"model", model_}}, block_buckets())),
        cached_tokens_(f_->cached_tokens.Add({{"model", model_}}, cached_token_buckets())),
        prompt_blocks_(f_->prompt_blocks.Add({{"model", model_}})),
        cached_blocks_(f_->cached_blocks.Add({{"model", model_}})),
        indexed_blocks_(f_->indexed_blocks.Add({{"model", model_}})),
        kv_events_(f_->kv_events.Add({{"model", model_}})) {
    // Both migration series exist from the start (at 0), so rate() and alerts see them before
    // the first migration.
    for (const char* type : {"new_request", "ongoing_request"})
      f_->migrations.Add({{"model", model_}, {"migration_type", type}});
  }

  void routed(const router::RoutingDecision& d) override {
    const char* mode = d.override_header ? "override" : router::router_mode_name(d.mode);
    f_->decisions.Add({{"model", model_}, {"worker_id", hex(d.worker_id)}, {"router_mode", mode}})
        .Increment();
    const auto cached = static_cast<double>(d.cached_blocks);
    overlap_blocks_.Observe(cached);
    cached_tokens_.Observe(cached * d.block_size);
    prompt_blocks_.Increment(static_cast<double>(d.prompt_blocks));
    cached_blocks_.Increment(cached);
  }

  void migrated(router::MigrationType type) override {
    f_->migrations
        .Add({{"model", model_},
              {"migration_type",
               type == router::MigrationType::kNewRequest ? "new_request" : "ongoing_request"}})
        .Increment();
  }

  void worker_load(uint64_t worker_id, double decode_blocks, double prefill_tokens) override {
    const std::string id = hex(worker_id);
    f_->active_decode_blocks.Add({{"model", model_}, {"worker_id", id}}).Set(decode_blocks);
    f_->active_prefill_tokens.Add({{"model", model_}, {"worker_id", id}}).Set(prefill_tokens);
  }

  void worker_removed(uint64_t worker_id) override {
    const std::string id = hex(worker_id);
    f_->active_decode_blocks.Remove(
        &f_->active_decode_blocks.Add({{"model", model_}, {"worker_id", id}}));
    f_->active_prefill_tokens.Remove(
        &f_->active_prefill_tokens.Add({{"model", model_}, {"worker_id", id}}));
  }

  void index_changed(size_t indexed_blocks, uint64_t kv_events) override {
    indexed_blocks_.Set(static_cast<double>(indexed_blocks));
    std::lock_guard lock(mu_);
    if (kv_events > kv_events_seen_) {
      kv_events_.Increment(static_cast<double>(kv_events - kv_events_seen_));
      kv_events_seen_ = kv_events;
    }
  }

 private:
  static std::string hex(uint64_t id) { return fmt::format("{:x}", id); }

  std::shared_ptr<RouterMetrics::Families> f_;
  std::string model_;
  prometheus::Histogram& overlap_blocks_;
  prometheus::Histogram& cached_tokens_;
  prometheus::Counter& prompt_blocks_;
  prometheus::Counter& cached_blocks_;
  prometheus::Gauge& indexed_blocks_;
  prometheus::Counter& kv_events_;
  std::mutex mu_;
  uint64_t kv_events_seen_ = 0;
};

}  // namespace

RouterMetrics::RouterMetrics() : families_(std::make_shared<Families>()) {}

std::shared_ptr<router::RouterObserver> RouterMetrics::observer(const std::string& model) {
  return std::make_shared<Observer>(families_, model);
}

std::string RouterMetrics::serialize() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(families_->registry->Collect());
}

}  // namespace turbine::metrics
