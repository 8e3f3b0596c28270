// Request-plane round trip: RemoteEngine -> loopback TCP -> WorkerServer -> an engine that answers
// at once with one token -> back. Prints p50/p99/mean in microseconds for sequential requests
// (latency) and the completion rate with N in flight (throughput).
//   build/request_plane_bench [requests=20000] [in_flight=64]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <vector>

#include "runtime/io_threads.h"
#include "runtime/request_plane.h"

namespace {

using namespace turbine;
using Clock = std::chrono::steady_clock;

// Finishes every request on submit with one token (the callback runs on the caller's thread).
class EchoEngine final : public engine::AsyncEngine {
 public:
  Status submit(engine::EngineRequest r) override {
    engine::EngineOutput out;
    out.tokens.push_back({r.prompt.back(), -0.5f, {}});
    out.finish = engine::FinishReason::kLength;
    out.prompt_tokens = static_cast<int>(r.prompt.size());
    out.completion_tokens = 1;
    r.on_output(std::move(out));
    return Status::ok();
  }
  void cancel(uint64_t) override {}
  void shutdown() override {}
  engine::EngineStats stats() const override { return {}; }
  int max_context() const override { return 4096; }
  int num_slots() const override { return 64; }
  int block_size() const override { return 16; }
};

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int in_flight = argc > 2 ? std::atoi(argv[2]) : 64;
  auto engine = std::make_shared<EchoEngine>();
  runtime::WorkerServerOptions so;
  so.host = "127.0.0.1";
  runtime::WorkerServer server(so, engine);
  if (!server.start().is_ok()) return 1;
  runtime::IoThreads io(1);
  runtime::RemoteEngineOptions ro;
  ro.address = "127.0.0.1:" + std::to_string(server.port());
  ro.max_context = 4096;
  runtime::RemoteEngine remote(ro, io.executor());
  const std::vector<int32_t> prompt(64, 7);  // a 64-token prompt

  auto one = [&](uint64_t id) {
    auto p = std::make_shared<std::promise<void>>();
    auto f = p->get_future();
    engine::EngineRequest r;
    r.id = id;
    r.prompt = prompt;
    r.params.max_tokens = 1;
    r.on_output = [p](engine::EngineOutput&& o) {
      if (o.finish != engine::FinishReason::kNone) p->set_value();
    };
    (void)remote.submit(std::move(r));
    f.wait();
  };
  for (int i = 0; i < 1000; ++i) one(i + 1);  // warm-up (connects the pool)

  std::vector<double> us;
  us.reserve(n);
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    one(100000 + i);
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double u : us) sum += u;
  std::printf(
      "round trip (1 in flight, %d requests, 64-token prompt, 1 token back): p50 %.1f us, "
      "p99 %.1f us, mean %.1f us\n",
      n, us[us.size() / 2], us[us.size() * 99 / 100], sum / static_cast<double>(n));

  // Throughput: keep `in_flight` requests open.
  std::atomic<int> done{0};
  std::atomic<uint64_t> next{1000000};
  std::promise<void> all;
  auto fut = all.get_future();
  std::function<void()> launch = [&] {
    engine::EngineRequest r;
    r.id = next++;
    r.prompt = prompt;
    r.params.max_tokens = 1;
    r.on_output = [&](engine::EngineOutput&& o) {
      if (o.finish == engine::FinishReason::kNone) return;
      const int d = ++done;
      if (d == n) all.set_value();
      if (d + in_flight <= n) launch();
    };
    (void)remote.submit(std::move(r));
  };
  const auto t0 = Clock::now();
  for (int i = 0; i < std::min(in_flight, n); ++i) launch();
  fut.wait();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("throughput (%d in flight): %.0f requests/s\n", in_flight, n / s);
  remote.shutdown();
  server.stop();
  io.stop();
  return 0;
}
