// Configuration of one `turbine bench` run: endpoint, load shape, workload, SLOs and outputs.
//
// Plain data, filled once by the CLI (or a test), checked by validate() and immutable afterwards.
// Pure; safe on any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turbine::bench {

// Tokens per hash block in Mooncake traces.
inline constexpr int kMooncakeBlockTokens = 512;

enum class ApiKind { kChat, kCompletions };

// Where request i starts.
enum class ArrivalKind {
  kClosedLoop,  // `concurrency` workers, each sends its next request when the previous finishes
  kPoisson,     // exponential gaps with mean 1/request_rate (rate inf: all at once)
  kTrace,       // the trace's own timestamps, divided by trace_speedup
};

enum class DatasetFormat { kAuto, kMooncake, kPrompts };

// A request counts towards goodput when every SLO that is set holds. ITL is judged on the
// request's mean inter-token latency (the TPOT of DistServe/vLLM): single slow steps are visible
// in the ITL percentiles already and would otherwise make goodput flap.
struct Slo {
  std::optional<double> ttft_ms;
  std::optional<double> itl_ms;
  std::optional<double> e2e_ms;
  bool empty() const { return !ttft_ms && !itl_ms && !e2e_ms; }
};

struct BenchOptions {
  // Endpoint. `url` is the server base (http://host:port or .../v1); a URL whose path already
  // ends in "completions" is used as is and decides `api`.
  std::string url = "http://127.0.0.1:8000";
  std::string model;  // empty: the first id of GET /v1/models
  ApiKind api = ApiKind::kChat;
  std::string api_key;
  bool ignore_eos = true;  // with max_tokens: exact output lengths where the server allows
  double timeout_s = 600;  // per request, applied to connect and to each read (idle timeout)

  // Load shape.
  ArrivalKind arrival = ArrivalKind::kClosedLoop;
  int concurrency = 1;       // closed loop: workers; open loop: cap on in-flight (0: none)
  double request_rate = 0;   // kPoisson: requests/s (infinity allowed)
  double trace_speedup = 1;  // kTrace: timestamps are divided by this
  // Mooncake traces: tokens per hash block (the trace's own blocks are 512). A smaller value
  // replays the same sharing structure with every request's input and output lengths scaled by
  // trace_block_tokens / 512: a scaled-down replay that keeps prefix reuse and arrival times.
  int trace_block_tokens = 512;
  int num_requests = 0;   // per point; 0: until duration_s (or 200 when no duration)
  double duration_s = 0;  // per point; 0: until num_requests. In-flight requests finish.
  std::vector<int> sweep_concurrency;  // non-empty: one point per level (closed loop)
  // Closed loop: the workers start linearly over this many seconds (worker w of W at
  // w * ramp_up_s / W, ramp_start_s) instead of all at once, as load tools' spawn rates do: a
  // point that starts `concurrency` prompts together measures that burst's queueing, not the
  // server's steady state. 0: all at once. The ramp is part of the point's duration.
  double ramp_up_s = 0;
  // Requests started in the first warmup_s seconds of a point are left out of its statistics
  // (they run, and stay in the CSV); the report gives how many. 0: none.
  double warmup_s = 0;

  // Workload: synthetic unless `dataset` is set.
  std::string dataset;
  DatasetFormat dataset_format = DatasetFormat::kAuto;
  int input_len = 256;
  double input_len_std = 0;
  int output_len = 128;
  double output_len_std = 0;
  int prefix_len = 0;         // shared prefix tokens, added in front of input_len
  int num_prefix_groups = 1;  // request i uses prefix i % num_prefix_groups
  uint64_t seed = 0;
  bool calibrate = false;  // scale word counts with the server's /tokenize (if offered)

  Slo slo;

  // Outputs.
  std::string output_json;
  std::string output_csv;
  std::string plot_svg;
  bool progress = true;        // shown only when stderr is a terminal
  bool handle_sigint = false;  // SIGINT stops the run; the partial report is still produced

  Status validate() const;
};

// When closed-loop worker `worker` (0-based, of `workers`) sends its first request: seconds after
// the point's start. 0 without a ramp. Pure.
double ramp_start_s(int worker, int workers, double ramp_up_s);

// "ttft=200,itl=50,e2e=2000" (milliseconds; any subset, at least one).
Result<Slo> parse_slo(std::string_view spec);
// "1,2,4,8": positive integers.
Result<std::vector<int>> parse_int_list(std::string_view spec, std::string_view what);
// "trace" -> kTrace; "inf" or a positive number -> kPoisson with that rate.
Status parse_request_rate(std::string_view spec, BenchOptions& options);

}  // namespace turbine::bench
