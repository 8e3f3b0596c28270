// Prometheus metrics. Every metric name Turbine exports is defined in this header.
//
// Names follow NVIDIA Dynamo's frontend set (dynamo_frontend_* -> turbine_frontend_*) so existing
// dashboards and alerts carry over. Counters and histograms are thread-safe (prometheus-cpp);
// any thread may record. /metrics serialises the registry in the text exposition format.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "engine/async_engine.h"

namespace turbine::metrics {

inline constexpr const char* kRequestsTotal = "turbine_frontend_requests_total";
inline constexpr const char* kInflightRequests = "turbine_frontend_inflight_requests";
inline constexpr const char* kQueuedRequests = "turbine_frontend_queued_requests";
inline constexpr const char* kDisconnectedClients = "turbine_frontend_disconnected_clients";
inline constexpr const char* kRequestDuration = "turbine_frontend_request_duration_seconds";
inline constexpr const char* kTimeToFirstToken = "turbine_frontend_time_to_first_token_seconds";
inline constexpr const char* kInterTokenLatency = "turbine_frontend_inter_token_latency_seconds";
inline constexpr const char* kInputSequenceTokens = "turbine_frontend_input_sequence_tokens";
inline constexpr const char* kOutputSequenceTokens = "turbine_frontend_output_sequence_tokens";
inline constexpr const char* kOutputTokensTotal = "turbine_frontend_output_tokens_total";
inline constexpr const char* kModelContextLength = "turbine_frontend_model_context_length";
inline constexpr const char* kModelMaxNumSeqs = "turbine_frontend_model_max_num_seqs";
inline constexpr const char* kEngineRunning = "turbine_engine_running_requests";
inline constexpr const char* kEngineWaiting = "turbine_engine_waiting_requests";
inline constexpr const char* kEngineSteps = "turbine_engine_steps_total";
inline constexpr const char* kEngineCancelled = "turbine_engine_cancelled_requests_total";
inline constexpr const char* kEngineKvTotalBlocks = "turbine_engine_kv_total_blocks";
inline constexpr const char* kEngineKvUsedBlocks = "turbine_engine_kv_used_blocks";
inline constexpr const char* kEnginePrefixQueriedTokens =
    "turbine_engine_prefix_cache_queried_tokens_total";
inline constexpr const char* kEnginePrefixHitTokens =
    "turbine_engine_prefix_cache_hit_tokens_total";
inline constexpr const char* kEnginePrefixHitRate = "turbine_engine_prefix_cache_hit_rate";
inline constexpr const char* kEnginePreemptions = "turbine_engine_preemptions_total";
inline constexpr const char* kEngineStepBatchSize = "turbine_engine_last_step_batch_size";
inline constexpr const char* kEngineStepTokens = "turbine_engine_last_step_tokens";
inline constexpr const char* kEngineStepSeconds = "turbine_engine_last_step_seconds";
// Scheduling for latency targets (issue 29): prefill per step, queue wait, and the step-time
// model's prediction against the measured step (mean relative error = error_total / samples).
inline constexpr const char* kEnginePrefillTokens = "turbine_engine_prefill_tokens_total";
inline constexpr const char* kEngineStepPrefillTokens = "turbine_engine_last_step_prefill_tokens";
inline constexpr const char* kEngineQueueAdmissions = "turbine_engine_queue_admissions_total";
inline constexpr const char* kEngineQueueWaitSeconds = "turbine_engine_queue_wait_seconds_total";
inline constexpr const char* kEngineStepPredictedSeconds =
    "turbine_engine_last_step_predicted_seconds";
inline constexpr const char* kEngineStepModelSamples = "turbine_engine_step_model_samples_total";
inline constexpr const char* kEngineStepModelError =
    "turbine_engine_step_model_relative_error_total";
inline constexpr const char* kEngineBoostedSteps = "turbine_engine_ttft_boosted_steps_total";
// Disaggregated serving (issue 8): prefill side (pinned transfers), decode side (KV imports), and
// the orchestrator's decisions (DisaggEngine). Set from engine::EngineStats like the above.
inline constexpr const char* kEngineKvTransfersPinned = "turbine_engine_kv_transfers_pinned";
inline constexpr const char* kEngineKvTransferPinnedBlocks =
    "turbine_engine_kv_transfer_pinned_blocks";
inline constexpr const char* kEngineKvTransfersExpired =
    "turbine_engine_kv_transfers_expired_total";
inline constexpr const char* kEngineKvImports = "turbine_engine_kv_imports_total";
inline constexpr const char* kEngineKvImportFallbacks = "turbine_engine_kv_import_fallbacks_total";
inline constexpr const char* kEngineKvImportFetchedBlocks =
    "turbine_engine_kv_import_fetched_blocks_total";
inline constexpr const char* kEngineKvImportReusedBlocks =
    "turbine_engine_kv_import_reused_blocks_total";
inline constexpr const char* kEngineKvImportTierBlocks =
    "turbine_engine_kv_import_tier_blocks_total";
inline constexpr const char* kEngineKvTransferBytes = "turbine_engine_kv_transfer_bytes_total";
inline constexpr const char* kEngineKvTransferSeconds = "turbine_engine_kv_transfer_seconds_total";
inline constexpr const char* kEngineKvDeviceImports = "turbine_engine_kv_device_imports_total";
inline constexpr const char* kEngineKvDeviceTransferBytes =
    "turbine_engine_kv_device_transfer_bytes_total";
inline constexpr const char* kEngineKvDeviceTransferSeconds =
    "turbine_engine_kv_device_transfer_seconds_total";
inline constexpr const char* kDisaggRemotePrefills = "turbine_disagg_remote_prefills_total";
inline constexpr const char* kDisaggLocalPrefills = "turbine_disagg_local_prefills_total";
inline constexpr const char* kDisaggPrefillFailures = "turbine_disagg_prefill_failures_total";
inline constexpr const char* kDisaggPrefillInflight = "turbine_disagg_prefill_inflight";
inline constexpr const char* kDisaggPrefillQueueSize = "turbine_disagg_prefill_queue_size";
// Per KV transport (label transport: tcp, ucx, in_process, cuda_ipc), on decode workers.
inline constexpr const char* kKvTransportFetches = "turbine_kv_transport_fetches_total";
inline constexpr const char* kKvTransportFailures = "turbine_kv_transport_failures_total";
inline constexpr const char* kKvTransportBytes = "turbine_kv_transport_bytes_total";
inline constexpr const char* kKvTransportSeconds = "turbine_kv_transport_seconds_total";
// KV cache tiers (issue 24; label tier: host, disk), made when a tier first reports. Counters
// per tier, then gauges, then the engine's loads (no tier label).
inline constexpr const char* kKvTierOffloadedBlocks = "turbine_kv_tier_offloaded_blocks_total";
inline constexpr const char* kKvTierOffloadedBytes = "turbine_kv_tier_offloaded_bytes_total";
inline constexpr const char* kKvTierOnboardedBlocks = "turbine_kv_tier_onboarded_blocks_total";
inline constexpr const char* kKvTierOnboardedBytes = "turbine_kv_tier_onboarded_bytes_total";
inline constexpr const char* kKvTierLookupBlocks = "turbine_kv_tier_lookup_blocks_total";
inline constexpr const char* kKvTierHitBlocks = "turbine_kv_tier_hit_blocks_total";
inline constexpr const char* kKvTierOnboardSeconds = "turbine_kv_tier_onboard_seconds_total";
inline constexpr const char* kKvTierCorruptBlocks = "turbine_kv_tier_corrupt_blocks_total";
inline constexpr const char* kKvTierErrors = "turbine_kv_tier_errors_total";
inline constexpr const char* kKvTierFilteredBlocks = "turbine_kv_tier_filtered_blocks_total";
inline constexpr const char* kKvTierHitRate = "turbine_kv_tier_hit_rate";
inline constexpr const char* kKvTierUsedBytes = "turbine_kv_tier_used_bytes";
inline constexpr const char* kKvTierCapacityBytes = "turbine_kv_tier_capacity_bytes";
inline constexpr const char* kKvTierLoads = "turbine_kv_tier_loads_total";
inline constexpr const char* kKvTierLoadTimeouts = "turbine_kv_tier_load_timeouts_total";
inline constexpr const char* kKvTierOnboardedTokens = "turbine_kv_tier_onboarded_tokens_total";
inline constexpr const char* kKvTierRecomputedBlocks = "turbine_kv_tier_recomputed_blocks_total";
inline constexpr const char* kKvTierOffloadDroppedBlocks =
    "turbine_kv_tier_offload_dropped_blocks_total";
// Router (metrics/router_metrics.h; Dynamo's frontend names where it has one).
inline constexpr const char* kRouterDecisions = "turbine_router_decisions_total";
inline constexpr const char* kRouterOverlapBlocks = "turbine_router_overlap_blocks";
inline constexpr const char* kRouterPromptBlocks = "turbine_router_prompt_blocks_total";
inline constexpr const char* kRouterCachedBlocks = "turbine_router_cached_blocks_total";
inline constexpr const char* kRouterIndexedBlocks = "turbine_router_indexed_blocks";
inline constexpr const char* kRouterKvEvents = "turbine_router_kv_events_total";
inline constexpr const char* kFrontendCachedTokens = "turbine_frontend_cached_tokens";
inline constexpr const char* kWorkerActiveDecodeBlocks =
    "turbine_frontend_worker_active_decode_blocks";
inline constexpr const char* kWorkerActivePrefillTokens =
    "turbine_frontend_worker_active_prefill_tokens";
inline constexpr const char* kModelMigrations = "turbine_frontend_model_migration_total";
inline constexpr const char* kHttpRequestsTotal = "turbine_http_requests_total";
inline constexpr const char* kUptime = "turbine_process_uptime_seconds";
// Planner (issue 23, src/planner): served on `turbine planner --status-port`. Labels: model,
// pool (prefill, decode), phase (prefill, decode), direction (up, down).
inline constexpr const char* kPlannerObservedRequestRate = "turbine_planner_observed_request_rate";
inline constexpr const char* kPlannerPredictedRequestRate =
    "turbine_planner_predicted_request_rate";
inline constexpr const char* kPlannerPredictedInputTokens =
    "turbine_planner_predicted_input_tokens";
inline constexpr const char* kPlannerPredictedOutputTokens =
    "turbine_planner_predicted_output_tokens";
inline constexpr const char* kPlannerObservedTtft = "turbine_planner_observed_ttft_seconds";
inline constexpr const char* kPlannerObservedItl = "turbine_planner_observed_itl_seconds";
inline constexpr const char* kPlannerEstimatedTtft = "turbine_planner_estimated_ttft_seconds";
inline constexpr const char* kPlannerEstimatedItl = "turbine_planner_estimated_itl_seconds";
inline constexpr const char* kPlannerCorrectionFactor = "turbine_planner_correction_factor";
inline constexpr const char* kPlannerObservedKvUsage = "turbine_planner_observed_kv_usage";
inline constexpr const char* kPlannerObservedQueued = "turbine_planner_observed_queued_requests";
inline constexpr const char* kPlannerDesiredReplicas = "turbine_planner_desired_replicas";
inline constexpr const char* kPlannerCurrentReplicas = "turbine_planner_current_replicas";
inline constexpr const char* kPlannerReadyReplicas = "turbine_planner_ready_replicas";
inline constexpr const char* kPlannerDecisions = "turbine_planner_decisions_total";
inline constexpr const char* kPlannerScaleErrors = "turbine_planner_scale_errors_total";
inline constexpr const char* kPlannerMetricsUnreachable = "turbine_planner_metrics_unreachable";
inline constexpr const char* kPlannerMetricsFailures = "turbine_planner_metrics_failures_total";
inline constexpr const char* kPlannerWorkerStartFailures =
    "turbine_planner_worker_start_failures_total";
inline constexpr const char* kPlannerPoolBlocked = "turbine_planner_pool_blocked";
inline constexpr const char* kPlannerDryRun = "turbine_planner_dry_run";

// Label values of kRequestsTotal.
enum class RequestType { kUnary, kStream };
enum class RequestStatus { kSuccess, kError, kCancelled };

// The frontend's metrics for one served model.
class FrontendMetrics;

// The series of one served model (label model="..."). References into FrontendMetrics'
// registry; created by FrontendMetrics::model() and valid as long as it.
class ModelMetrics {
 public:
  void request_done(std::string_view endpoint, RequestType type, RequestStatus status);
  // Sets the turbine_engine_* series from an engine's stats. The engine's running totals feed
  // counters (every `*_total` name is a counter): each observation adds what a total grew since
  // the last one; a total that shrinks (a worker left a router's sum) adds nothing, so a counter
  // never goes down. Scrapes may call it concurrently.
  void observe_engine(const engine::EngineStats& s);

  const std::string model;
  prometheus::Gauge& inflight;
  prometheus::Gauge& queued;
  prometheus::Counter& disconnected_clients;
  prometheus::Histogram& request_duration;
  prometheus::Histogram& time_to_first_token;
  prometheus::Histogram& inter_token_latency;
  prometheus::Histogram& input_tokens;
  prometheus::Histogram& output_tokens;
  prometheus::Counter& output_tokens_total;
  prometheus::Gauge& context_length;
  prometheus::Gauge& max_num_seqs;
  prometheus::Gauge& engine_running;
  prometheus::Gauge& engine_waiting;
  prometheus::Counter& engine_steps;
  prometheus::Counter& engine_cancelled;
  prometheus::Gauge& kv_total_blocks;
  prometheus::Gauge& kv_used_blocks;
  prometheus::Counter& prefix_queried_tokens;
  prometheus::Counter& prefix_hit_tokens;
  prometheus::Gauge& prefix_hit_rate;
  prometheus::Counter& preemptions;
  prometheus::Gauge& step_batch_size;
  prometheus::Gauge& step_tokens;
  prometheus::Gauge& step_seconds;
  prometheus::Counter& prefill_tokens;
  prometheus::Gauge& step_prefill_tokens;
  prometheus::Counter& queue_admissions;
  prometheus::Counter& queue_wait_seconds;
  prometheus::Gauge& step_predicted_seconds;
  prometheus::Counter& step_model_samples;
  prometheus::Counter& step_model_error;
  prometheus::Counter& boosted_steps;

 private:
  friend class FrontendMetrics;
  ModelMetrics(prometheus::Registry& registry, prometheus::Family<prometheus::Counter>& requests,
               std::string model);
  prometheus::Registry& registry_;
  prometheus::Family<prometheus::Counter>& requests_total_;
  // Adds to `c` what `total` grew since the last call for `c`. Caller holds observe_mu_.
  void set_total(prometheus::Counter& c, double total);
  // The disaggregation series, kEngineKvTransfersPinned .. kDisaggPrefillQueueSize in order: a
  // gauge or, for the *_total names, a counter.
  std::vector<prometheus::Gauge*> disagg_gauges_;      // null where the series is a counter
  std::vector<prometheus::Counter*> disagg_counters_;  // null where the series is a gauge
  std::mutex observe_mu_;  // scrapes may observe concurrently; guards what follows
  std::map<const prometheus::Counter*, double> last_totals_;
  // Per transport: fetches, failures, bytes, seconds (made when a transport first reports).
  std::map<std::string, std::array<prometheus::Counter*, 4>> transports_;
  // KV tiers: per tier (host, disk) its counters and gauges, the engine's load counters; made
  // when a tier first has a capacity (metrics.cpp observe_tiers).
  struct TierSeries {
    std::array<prometheus::Counter*, 10> counters{};
    std::array<prometheus::Gauge*, 3> gauges{};
  };
  std::map<std::string, TierSeries> tiers_;
  std::array<prometheus::Counter*, 5> tier_loads_{};
  void observe_tiers(const engine::EngineStats& s);
};

// The frontend's registry: per-model series (model()) plus process-wide ones. Thread-safe.
class FrontendMetrics {
  // Declared first: every reference below points into the registry.
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_total_;
  prometheus::Family<prometheus::Counter>* http_requests_total_;

 public:
  // `default_model`'s series (if not empty) exist from the start, at zero.
  explicit FrontendMetrics(std::string default_model);
  ~FrontendMetrics();

  // The series of `name`, created on first use.
  ModelMetrics& model(const std::string& name);
  void http_response(int status_code);

  prometheus::Gauge& uptime;

  // The registry in Prometheus text format (version 0.0.4).
  std::string serialize() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<ModelMetrics>> models_;
};

}  // namespace turbine::metrics
