// The load generator: sends a workload to an OpenAI-compatible endpoint and measures each request.
//
// Boost.Asio + Beast with C++20 coroutines on ONE event-loop thread: the thread that calls
// run_point() runs the io_context, and every request coroutine, timer, the progress bar and the
// SIGINT handler live on it, so nothing here is locked. One connection per in-flight request;
// finished keep-alive connections go to an idle pool and are reused (a reused connection that the
// server closed meanwhile is retried once on a fresh one). Times come from steady_clock, read when
// a read completes, i.e. when the bytes arrived, before they are parsed.
// A Runner is created, used and destroyed on one thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "bench/options.h"
#include "bench/stats.h"
#include "bench/workload.h"
#include "common/status.h"

namespace turbine::bench {

struct Endpoint {
  std::string host;
  std::string port;
  std::string host_header;  // host[:port] as sent in Host:
  std::string base_path;    // "" or "/v1"-style prefix before /v1/...
  std::string target;       // path of the generation endpoint
  ApiKind api = ApiKind::kChat;
};

// http://host[:port][/path]. The path may be the server base ("", "/", "/v1") or the full
// endpoint ("/v1/chat/completions", "/v1/completions"), which then decides the API.
Result<Endpoint> parse_endpoint(const std::string& url, ApiKind api);

struct PointConfig {
  ArrivalKind arrival = ArrivalKind::kClosedLoop;
  int concurrency = 1;       // closed loop: workers; open loop: in-flight cap (0: none)
  double request_rate = 0;   // kPoisson
  double trace_speedup = 1;  // kTrace
  int num_requests = 0;      // 0: until duration_s
  double duration_s = 0;     // 0: until num_requests
  double ramp_up_s = 0;      // closed loop: workers start over this many seconds
  std::string label;
};

struct PointResult {
  std::vector<RequestResult> results;            // sorted by index; cancelled requests included
  bool interrupted = false;                      // SIGINT (or stop()) ended the point early
  std::chrono::steady_clock::time_point origin;  // the zero of every *_ms in results
};

class Runner {
 public:
  // `workload` must outlive the Runner.
  Runner(const BenchOptions& options, Endpoint endpoint, const Workload& workload);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Resolves the host and opens (and closes) one TCP connection. Unavailable with the address
  // and the system's reason when the server cannot be reached.
  Status check_reachable();
  // GET {base}/v1/models: the first model id.
  Result<std::string> first_model();
  // POST {base}/tokenize with `text` and returns the token count (NotFound/Unimplemented when
  // the server has no /tokenize).
  Result<int64_t> count_tokens(const std::string& text);

  // Runs one load point to completion (blocking, on the calling thread). The model name used is
  // `model`. With options.handle_sigint, SIGINT cancels in-flight requests and returns what was
  // measured, with interrupted set; later points should then not be started.
  PointResult run_point(const PointConfig& config, const std::string& model);

  // True after a SIGINT was seen by any point.
  bool interrupted() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace turbine::bench
