// The planner's configuration: one struct with defaults, loaded once (JSON file < flags),
// validated, immutable afterwards. Every error names its key (e.g. `models[0].pools.decode.max`)
// so `turbine planner` refuses to start with the key in the message.
//
// Time: `time_scale` is simulated seconds per wall-clock second (a mock fleet run with
// `--speedup S` is planned with time_scale S). Latency targets, the interval and the load
// thresholds are in planner time (wall x time_scale); process timeouts of the local connector
// (ready, drain) are wall-clock seconds, because they are about processes, not the model.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "planner/predictor.h"
#include "planner/profile.h"

namespace turbine::planner {

enum class PlannerMode { kLoad, kSla };
enum class PoolRole { kPrefill, kDecode };
enum class ConnectorKind { kLocal, kKubernetes, kVirtual };

const char* pool_role_name(PoolRole role);  // "prefill", "decode"
const char* planner_mode_name(PlannerMode mode);
const char* connector_kind_name(ConnectorKind kind);

struct PoolConfig {
  PoolRole role = PoolRole::kDecode;
  int min_replicas = 1;
  int max_replicas = 8;
  int initial_replicas = -1;  // started (or asked for) when the planner starts; -1: min
  int gpus_per_worker = 1;
  // local: the worker's argv (e.g. turbine worker --model ... --worker-type prefill); the
  // connector appends `--status-port P` and watches /health there.
  std::vector<std::string> command;
  // kubernetes: the Deployment whose scale this pool is.
  std::string deployment;
};

struct ModelConfig {
  std::string name;  // the served model name (label `model` on the frontend's metrics)
  // The decode pool serves every request (and prefills them when there is no prefill pool, or
  // when the frontend decides to prefill locally); the prefill pool is optional.
  std::vector<PoolConfig> pools;
  int max_gpus = 0;  // 0: no per-model budget
  std::string profile_path;
  Profile profile;  // loaded from profile_path by load_profiles()
  double ttft_ms = 2000;
  double itl_ms = 50;

  const PoolConfig* pool(PoolRole role) const;
};

struct LoadModeConfig {
  double kv_scale_up = 0.9;     // decode pool: mean KV-cache usage above this adds a worker
  double kv_scale_down = 0.5;   // ... below this (and the consolidation check) removes one
  double queue_scale_up = 2.0;  // prefill work: requests waiting for a first token per worker
  double queue_scale_down = 0.5;
  int grace_intervals = 3;  // after a scale-up, intervals before a pool may shrink
};

struct SlaModeConfig {
  PredictorOptions predictor;
  // Scale-down follows the largest recommendation of the last N intervals (scale-up is at
  // once): a dip of one interval does not remove workers that the next interval needs.
  int scale_down_window = 3;
  // Hysteresis: a pool shrinks only to a size that meets the targets times this margin, so a
  // fleet that just meets them at N - 1 (and would need N again at the next wiggle of the rate
  // or of the correction factors) is kept at N.
  double scale_down_margin = 0.9;
  // A scale-down must hold at the worst interval of the window: the size it goes to meets the
  // targets times the margin at each of the last scale_down_window intervals' planned load
  // (predicted rate + backlog) and correction factors, not only at this interval's. Scale-up
  // answers one interval's estimate, so a pool shrunk to a size that a recent interval's load
  // or model error would overfill gets its worker back within the window (an A -> B -> A flap).
  // The window's observed arrival rates count as well as its predictions: a forecast that
  // extrapolates a falling trend below what still arrives (a quiet tail) does not shrink the
  // pool below what the arrivals of the window need.
  // false: the margin is checked at this interval's load and corrections only.
  bool scale_down_worst_case = true;
  int length_window = 8;  // intervals over which input/output lengths are averaged
  double correction_min = 0.5, correction_max = 3.0;  // clamp of observed / expected latency
  double correction_weight = 0.5;    // weight of a new correction sample (moving average)
  int correction_min_requests = 10;  // fewer requests in an interval: keep the old factor
  // The model is a steady-state queue: an interval whose arrival rate, or the previous one's,
  // stepped from the interval before by more than this many standard deviations of Poisson
  // arrivals (|r1 - r0| > z * sqrt((r1 + r0) / interval)) is a transient (a queue building up
  // in a burst, or draining after one; its requests arrived over both intervals), not a model
  // error: it does not update the correction factors. 0: every interval updates them.
  double correction_steady_sd = 2.0;
};

struct LocalConnectorConfig {
  std::string log_dir;  // worker logs (worker-<pool>-<n>.log); empty: discarded
  std::string health_host = "127.0.0.1";
  double ready_timeout_s = 120;   // wall: a worker not healthy by then is failed and replaced once
  double drain_timeout_s = 3600;  // wall: SIGKILL after SIGTERM if still running
};

struct KubernetesConnectorConfig {
  // Empty: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT and the pod's service
  // account files under /var/run/secrets/kubernetes.io/serviceaccount/.
  std::string api_server;
  std::string token_file;
  std::string ca_file;
  std::string namespace_name;
  double timeout_s = 10;
};

struct PlannerConfig {
  PlannerMode mode = PlannerMode::kLoad;
  double interval_s = 30;
  double time_scale = 1;
  bool dry_run = false;
  ConnectorKind connector = ConnectorKind::kLocal;
  std::string frontend_metrics_url = "http://127.0.0.1:8000/metrics";
  double scrape_timeout_s = 5;  // wall
  int max_gpus_total = 0;       // 0: no total budget
  std::string status_host = "0.0.0.0";
  int status_port = -1;        // -1: no status server; 0: any free port
  std::string decision_log;    // JSON lines: every interval's inputs and decisions
  std::string ns = "turbine";  // discovery namespace (virtual connector, worker counts)
  LoadModeConfig load;
  SlaModeConfig sla;
  LocalConnectorConfig local;
  KubernetesConnectorConfig kubernetes;
  std::vector<ModelConfig> models;

  Status validate() const;
  // Reads every model's profile (sla mode); errors name models[i].profile.
  Status load_profiles();
};

// Strict: an unknown key, a wrong type or a bad value is an error naming the key. Fields not in
// the JSON keep the defaults above.
Result<PlannerConfig> config_from_json(std::string_view json);
Result<PlannerConfig> load_config_file(const std::string& path);

}  // namespace turbine::planner
