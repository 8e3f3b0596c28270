// The semantic stage's metrics: every series name, and the counters behind them.
//
// The module does not depend on prometheus-cpp (src/metrics/ depends on the engine); the stage
// records into SemanticMetrics and the frontend exports it, either by appending
// prometheus_text() to /metrics or by copying snapshot() into its registry.
// Thread-safe: any thread may record; one mutex guards the labelled maps (a handful of
// increments per request).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace turbine::semantic {

// Counter {decision, model}: requests for a virtual model routed by a decision.
inline constexpr const char* kMetricDecisions = "turbine_semantic_decisions_total";
// Histogram {signal}: keyword, embedding, domain, length, pii, pii_model, jailbreak,
// jailbreak_model, cache_lookup.
inline constexpr const char* kMetricSignalLatency = "turbine_semantic_signal_latency_seconds";
// Histogram: the whole SemanticStage::process call.
inline constexpr const char* kMetricStageLatency = "turbine_semantic_stage_duration_seconds";
// Counter {guard, type}: guard pii (type = BIO label) or jailbreak (type = detector label).
inline constexpr const char* kMetricBlocks = "turbine_semantic_blocks_total";
// Counter {type}: PII spans redacted (action redact).
inline constexpr const char* kMetricRedactions = "turbine_semantic_pii_redactions_total";
// Counter {tier}: exact, semantic.
inline constexpr const char* kMetricCacheHits = "turbine_semantic_cache_hits_total";
inline constexpr const char* kMetricCacheMisses = "turbine_semantic_cache_misses_total";
// Counter: semantic candidates above the threshold refused because their literals differed.
inline constexpr const char* kMetricCacheLiteralRejections =
    "turbine_semantic_cache_literal_rejections_total";
inline constexpr const char* kMetricCacheEntries = "turbine_semantic_cache_entries";  // gauge
// Counter {reason}: lru, ttl.
inline constexpr const char* kMetricCacheEvictions = "turbine_semantic_cache_evictions_total";
// Counter {result}: ok, failed.
inline constexpr const char* kMetricConfigReloads = "turbine_semantic_config_reloads_total";
// Counter {signal}: a model call that failed (the signal then counts as not matched).
inline constexpr const char* kMetricSignalErrors = "turbine_semantic_signal_errors_total";
// Counter {signal, reason}: the failed calls whose model was not there: reason unavailable (no
// encoder worker serves it right now, or it shut down) or timeout (no answer within
// encoder_models.timeout_ms).
inline constexpr const char* kMetricSignalUnavailable = "turbine_semantic_signal_unavailable_total";
// Gauge {key, model}: 1 while the model named by encoder_models.<key> can be called (a local
// model always; a remote one while an encoder worker serves it), else 0.
inline constexpr const char* kMetricEncoderModelAvailable =
    "turbine_semantic_encoder_model_available";

// Fixed latency buckets (seconds): 10 us .. 2.5 s.
inline constexpr std::array<double, 12> kLatencyBuckets = {1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3,
                                                           5e-3, 1e-2, 5e-2, 0.1,    0.5,  2.5};

struct Histogram {
  std::array<uint64_t, kLatencyBuckets.size() + 1> counts{};  // last = +Inf
  uint64_t count = 0;
  double sum = 0;
  void observe(double seconds);
};

using LabelPair = std::pair<std::string, std::string>;

struct MetricsSnapshot {
  std::map<LabelPair, uint64_t> decisions;  // (decision, model)
  std::map<LabelPair, uint64_t> blocks;     // (guard, type)
  // Transparent comparators: the per-request recorders look up by string_view, no allocation.
  std::map<std::string, uint64_t, std::less<>> redactions;
  std::map<std::string, Histogram, std::less<>> signal_latency;
  Histogram stage_latency;
  std::map<std::string, uint64_t, std::less<>> signal_errors;
  std::map<LabelPair, uint64_t> signal_unavailable;  // (signal, reason)
  // (key, model) -> available; filled by the owner of the models (semantic_hook), not the stage.
  std::map<LabelPair, bool> encoder_models;
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
  // Cache counters are filled from SemanticCache::stats() by the stage.
  uint64_t cache_exact_hits = 0, cache_semantic_hits = 0, cache_misses = 0;
  uint64_t cache_literal_rejections = 0, cache_entries = 0;
  uint64_t cache_evictions_lru = 0, cache_evictions_ttl = 0;
};

class SemanticMetrics {
 public:
  void decision(const std::string& decision, const std::string& model);
  void block(const std::string& guard, const std::string& type);
  void redaction(std::string_view type);
  void signal_latency(std::string_view signal, double seconds);
  void stage_latency(double seconds);
  void signal_error(std::string_view signal);
  void signal_unavailable(std::string_view signal, std::string_view reason);
  void reload(bool ok);

  MetricsSnapshot snapshot() const;

 private:
  mutable std::mutex mu_;
  MetricsSnapshot s_;
};

// Prometheus text exposition (0.0.4) of a snapshot, with HELP/TYPE lines.
std::string prometheus_text(const MetricsSnapshot& s);

}  // namespace turbine::semantic
