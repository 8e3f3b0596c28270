// A fast, scripted OpenAI-compatible endpoint for measuring the load generator itself and for
// tests: no model, every request answers `max_tokens` chunks (" tok" each) after `ttft_ms`, then
// one every `itl_ms`, on absolute deadlines so delays do not drift.
//
// Serves POST /v1/chat/completions and /v1/completions (stream or not, stream_options
// .include_usage honoured), GET /v1/models and POST /tokenize (one token per whitespace-separated
// word, so synthetic prompts count as intended).
//
// Threads: start() runs one io_context on `n_threads` threads; each connection is one coroutine
// chain (never concurrent with itself). The timing records are guarded by mutex_ (the only lock);
// start(), stop(), port() and take_timings() are called from the owning thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace turbine::bench {

struct FakeServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: ephemeral
  int n_threads = 1;
  double ttft_ms = 0;  // request fully read -> first content chunk written
  double itl_ms = 0;   // between content chunks; 0 with ttft 0: the whole stream in one write
  int default_output_tokens = 16;  // when the request has no max_tokens
  bool record_timings = false;     // keep FakeTiming per request (tests)
  std::string model = "fake-model";
};

// When the server did things, for checking the client's measurements.
struct FakeTiming {
  std::chrono::steady_clock::time_point received;             // request fully read
  std::vector<std::chrono::steady_clock::time_point> chunks;  // just before each content write
};

class FakeOpenAiServer {
 public:
  explicit FakeOpenAiServer(FakeServerOptions options);
  ~FakeOpenAiServer();  // stop()
  FakeOpenAiServer(const FakeOpenAiServer&) = delete;
  FakeOpenAiServer& operator=(const FakeOpenAiServer&) = delete;

  Status start();
  uint16_t port() const;
  void stop();
  uint64_t requests_served() const;
  // Timings by prompt (completions) or last message content (chat); the map is moved out.
  std::unordered_map<std::string, FakeTiming> take_timings();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace turbine::bench
