// Loopback checks: a frontend-side RemoteEngine talking to a WorkerServer on 127.0.0.1 (the
// request plane), and a decode-side TcpKvTransfer pulling blocks from it (the KV transfer), each
// with the numbers an operator compares against the real network later.
#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "doctor/doctor.h"
#include "doctor/probes.h"
#include "runtime/io_threads.h"
#include "runtime/kv_transfer_tcp.h"
#include "runtime/request_plane.h"

namespace turbine::doctor {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kBlockBytes = int64_t{2} << 20;  // an 8B model's 16-token BF16 block

// Answers every request at once with one token, on the caller's thread.
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
  int num_slots() const override { return 8; }
  int block_size() const override { return 16; }
};

engine::KvLayout layout() {
  return {"bf16", 16, 32, 8, 128, kBlockBytes};
}

// One pinned transfer (id 1) of `n_blocks` blocks of a byte pattern.
class BlockSource final : public engine::KvTransferSource {
 public:
  explicit BlockSource(int n_blocks)
      : n_blocks_(n_blocks), data_(static_cast<size_t>(kBlockBytes) * n_blocks) {
    for (size_t i = 0; i < data_.size(); i += 4096) data_[i] = static_cast<char>(i >> 12);
  }
  void read_transfer(uint64_t transfer_id, int first, int n,
                     engine::KvBytesCallback done) override {
    if (transfer_id != 1 || first < 0 || n < 0 || first + n > n_blocks_)
      return done(Status{StatusCode::kNotFound, "no such transfer"});
    done(std::string(data_.data() + first * kBlockBytes, static_cast<size_t>(n * kBlockBytes)));
  }
  void release_transfer(uint64_t) override {}
  engine::KvLayout kv_layout() const override { return layout(); }
  const std::vector<char>& data() const { return data_; }

 private:
  int n_blocks_;
  std::vector<char> data_;
};

}  // namespace

CheckResult check_request_plane_loopback(const DoctorOptions& o) {
  CheckResult c{"loopback.request_plane", "Request plane loopback", CheckStatus::kPass, "", {}};
  if (!o.loopback) {
    c.status = CheckStatus::kSkip;
    c.summary = "--no-loopback";
    return c;
  }
  runtime::WorkerServerOptions so;
  so.host = "127.0.0.1";
  runtime::WorkerServer server(so, std::make_shared<EchoEngine>());
  if (Status st = server.start(); !st.is_ok()) {
    c.status = CheckStatus::kFail;
    c.summary = "cannot start a request-plane server on 127.0.0.1: " + st.message();
    return c;
  }
  runtime::IoThreads io(1);
  runtime::RemoteEngineOptions ro;
  ro.address = "127.0.0.1:" + std::to_string(server.port());
  ro.max_context = 4096;
  ro.connect_timeout = std::chrono::milliseconds(o.timeout_ms);
  runtime::RemoteEngine remote(ro, io.executor());
  const std::vector<int32_t> prompt(64, 7);
  constexpr int kRequests = 200;
  std::vector<double> us;
  std::string error;
  for (int i = 0; i < kRequests + 20 && error.empty(); ++i) {
    auto p = std::make_shared<std::promise<std::string>>();
    auto f = p->get_future();
    engine::EngineRequest r;
    r.id = static_cast<uint64_t>(i + 1);
    r.prompt = prompt;
    r.params.max_tokens = 1;
    r.on_output = [p](engine::EngineOutput&& out) {
      if (out.finish == engine::FinishReason::kNone) return;
      p->set_value(out.finish == engine::FinishReason::kError ? out.error.message() : "");
    };
    const auto t0 = Clock::now();
    if (Status st = remote.submit(std::move(r)); !st.is_ok()) {
      error = st.message();
      break;
    }
    if (f.wait_for(std::chrono::milliseconds(o.timeout_ms)) != std::future_status::ready) {
      error = "no answer within the timeout";
      break;
    }
    error = f.get();
    if (i >= 20) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  remote.shutdown();
  server.stop();
  io.stop();
  if (!error.empty() || us.empty()) {
    c.status = CheckStatus::kFail;
    c.summary = "a request over loopback TCP failed: " + error;
    return c;
  }
  std::sort(us.begin(), us.end());
  const double p50 = us[us.size() / 2], p99 = us[us.size() * 99 / 100];
  c.details["requests"] = static_cast<int64_t>(us.size());
  c.details["p50_us"] = p50;
  c.details["p99_us"] = p99;
  c.summary = fmt::format("{} requests over 127.0.0.1: round trip p50 {:.0f} us, p99 {:.0f} us",
                          us.size(), p50, p99);
  return c;
}

CheckResult check_kv_transfer_loopback(const DoctorOptions& o) {
  CheckResult c{"loopback.kv_transfer", "KV transfer loopback", CheckStatus::kPass, "", {}};
  if (!o.loopback) {
    c.status = CheckStatus::kSkip;
    c.summary = "--no-loopback";
    return c;
  }
  const int n_blocks = static_cast<int>(std::max<int64_t>(1, o.kv_loopback_bytes / kBlockBytes));
  auto source = std::make_shared<BlockSource>(n_blocks);
  runtime::WorkerServerOptions so;
  so.host = "127.0.0.1";
  runtime::WorkerServer server(so, std::make_shared<EchoEngine>());
  server.set_kv_source(source, "127.0.0.1");
  if (Status st = server.start(); !st.is_ok()) {
    c.status = CheckStatus::kFail;
    c.summary = "cannot start a KV source on 127.0.0.1: " + st.message();
    return c;
  }
  runtime::TcpKvTransferOptions to;
  to.timeout = std::chrono::milliseconds(std::max(o.timeout_ms, 10'000));
  runtime::TcpKvTransfer transfer(to);
  engine::KvTransferMeta meta;
  meta.transfer_id = 1;
  meta.address = "127.0.0.1:" + std::to_string(server.port());
  meta.layout = layout();
  meta.num_tokens = n_blocks * 16;
  for (int i = 0; i < n_blocks; ++i) meta.block_ids.push_back(i);
  const uint64_t bytes = static_cast<uint64_t>(n_blocks) * kBlockBytes;
  std::vector<double> gbps;
  std::string error;
  for (int rep = 0; rep < 4 && error.empty(); ++rep) {  // one warm-up, three measured
    // Shared: a fetch that outlives the wait must not touch a destroyed promise.
    auto p = std::make_shared<std::promise<Result<std::string>>>();
    auto f = p->get_future();
    const auto t0 = Clock::now();
    transfer.fetch(meta, 0, n_blocks, [p](Result<std::string> b) { p->set_value(std::move(b)); });
    if (f.wait_for(to.timeout + std::chrono::seconds(1)) != std::future_status::ready) {
      error = "no answer within the timeout";
      break;
    }
    Result<std::string> got = f.get();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!got) {
      error = got.status().message();
    } else if (got->size() != bytes ||
               !std::equal(got->begin(), got->end(), source->data().begin())) {
      error = fmt::format("{} bytes came back, not the {} sent", got->size(), bytes);
    } else if (rep > 0) {
      gbps.push_back(static_cast<double>(bytes) / s / 1e9);
    }
  }
  server.stop();
  if (!error.empty()) {
    c.status = CheckStatus::kFail;
    c.summary = "a KV fetch over loopback TCP failed: " + error;
    return c;
  }
  std::sort(gbps.begin(), gbps.end());
  const double median = gbps[gbps.size() / 2];
  c.details["bytes"] = static_cast<int64_t>(bytes);
  c.details["blocks"] = n_blocks;
  c.details["gb_per_s"] = median;
  c.summary = fmt::format("{} in {} blocks fetched over 127.0.0.1 at {:.2f} GB/s (median of 3)",
                          format_bytes(static_cast<int64_t>(bytes)), n_blocks, median);
  return c;
}

}  // namespace turbine::doctor
