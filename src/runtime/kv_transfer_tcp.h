// TcpKvTransfer: the decode worker's side of the TCP KV transport (issue 8), host-staged. A fetch
// connects to the prefill worker's request plane (meta.address: its WorkerServer, which answers
// KvPull frames from the engine's pinned transfers, runtime/wire.h), pulls the blocks in frames of
// at most max_pull_bytes with up to pull_window pulls in flight (the source prepares the next
// frame while the last one is on the wire), writes each frame's bytes at its place in the result,
// and hands the result to the engine's callback; release sends KvRelease. Connections are kept
// per address (at most max_idle_connections idle ones each) and reused by later fetches and
// releases; a reused connection that turns out dead is replaced once, before any bytes came.
//
// Threads: its own IoThreads (n_threads); fetch/release may be called from any thread and never
// block; callbacks run on those threads. Counters are atomics.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/kv_transfer.h"

namespace turbine::runtime {

class IoThreads;

struct TcpKvTransferOptions {
  int n_threads = 1;
  std::chrono::milliseconds timeout{30'000};   // a whole fetch (connect included)
  int64_t max_pull_bytes = int64_t{16} << 20;  // per KvData frame (under kMaxFrameBytes)
  int pull_window = 2;                         // KvPull frames in flight per fetch
  int max_idle_connections = 4;                // per address; 0: one connection per fetch
  std::string token;  // the request-plane token (WorkerServerOptions::token) of the peers
};

class TcpKvTransfer final : public engine::KvTransfer {
 public:
  explicit TcpKvTransfer(TcpKvTransferOptions options = {});
  ~TcpKvTransfer() override;  // stops the threads; fetches in flight get no callback

  void fetch(const engine::KvTransferMeta& meta, int first_block, int n_blocks,
             engine::KvBytesCallback done) override;
  void release(const engine::KvTransferMeta& meta) override;
  std::string_view name() const override { return "tcp"; }
  engine::KvTransportStats stats() const;  // "tcp"; connects: for fetches and releases
  std::vector<engine::KvTransportStats> transport_stats() const override;

  struct Counters {
    std::atomic<uint64_t> fetches{0}, failures{0}, bytes{0}, connects{0};
    std::atomic<double> seconds{0.0};
  };
  struct Pool;  // idle connections by address

 private:
  const TcpKvTransferOptions options_;
  std::shared_ptr<Counters> counters_ = std::make_shared<Counters>();
  std::shared_ptr<Pool> pool_;
  std::unique_ptr<IoThreads> io_;
};

}  // namespace turbine::runtime
