// The TCP request plane: WorkerServer serves one AsyncEngine to many frontends; RemoteEngine is
// an AsyncEngine whose requests run on one remote worker. Frames: runtime/wire.h.
//
// WorkerServer threads: its own IoThreads. Each connection lives on a strand; requests of all
// connections are multiplexed onto the one engine (server-unique engine ids). The engine's
// callbacks only post to the connection's strand, where outputs are COALESCED per request until
// the writer takes them: the write queue is bounded by the number of open requests, not by
// tokens, so a slow reader costs no memory growth. A write that makes no progress for
// `write_stall_timeout` closes the connection. A connection that closes (client gone, protocol
// error, stall) cancels every request it opened.
//
// Peers (issue 18): a connection's first frame must be a Hello with the server's `token` (when it
// has one); a peer without it gets a Close frame and is disconnected, as is one that sends nothing
// for `hello_timeout` or starts with a frame too large to be a Hello. Pings are answered with
// Pongs on the connection's strand, independently of the engine.
//
// RemoteEngine threads: an executor passed in (shared by every RemoteEngine of a frontend).
// `pool_size` connections to the worker, opened lazily; a request uses connection id % pool.
// Every output is delivered on that connection's strand. When a connection breaks (EOF, reset,
// connect failure or timeout), every request open on it gets a final kError with
// StatusCode::kUnavailable at once, which is what the router migrates on; a request cancelled
// before the break gets kCancelled instead. The next request reconnects.
//
// Hung workers: an open connection sends a Ping every `ping_interval`; one that hears nothing
// (no Pong, no output) for `silence_timeout` is treated as broken the same way, and the worker
// is marked silent: submit() refuses new requests with kUnavailable (the router then picks
// another worker, or answers 503 when there is none) while one connection keeps reconnecting and
// pinging it; the first frame it hears back ends the silence. A SIGSTOPped worker keeps its
// sockets open (the kernel even completes new connections), so only silence reveals it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "common/status.h"
#include "encoder/async_encoder.h"
#include "engine/async_engine.h"

namespace turbine::runtime {

struct WorkerServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 0;  // 0: any free port (see port())
  int n_threads = 1;
  std::chrono::milliseconds write_stall_timeout{30'000};
  std::string token;  // peers must send it in their Hello; empty: any peer is served
  std::chrono::milliseconds hello_timeout{10'000};
};

class WorkerServer {
 public:
  // `engine` may be null on a worker that serves only an encoder model (set_encoder).
  WorkerServer(WorkerServerOptions options, std::shared_ptr<engine::AsyncEngine> engine);
  ~WorkerServer();  // stop()
  WorkerServer(const WorkerServer&) = delete;
  WorkerServer& operator=(const WorkerServer&) = delete;

  Status start();  // binds and listens; Unavailable if the address cannot be bound
  // Disaggregated serving (issue 8), before start(): KvPull/KvRelease frames are served from
  // `source` (the engine's pinned transfers), and prefill outputs' KvTransferMeta get
  // `advertise_host`:port() (this server as peers reach it) when they carry no address.
  void set_kv_source(std::shared_ptr<engine::KvTransferSource> source, std::string advertise_host);
  // Encoder models (issue 27), before start(): EncodeRequest frames run on `encoder` and are
  // answered with one EncodeResponse frame each. Without one they are answered with an error, as
  // generation requests are on a worker without an engine.
  void set_encoder(std::shared_ptr<encoder::AsyncEncoder> encoder);
  // Before start(): the address stamped instead of advertise_host:port(), e.g. "ucx://host:port"
  // when a UcxKvServer (runtime/kv_transfer_ucx.h) serves the transfers.
  void set_kv_address(std::string address);
  uint16_t port() const;
  size_t open_requests() const;  // any thread
  size_t connections() const;
  // Closes every connection (their requests are cancelled) and joins the threads. Idempotent.
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

struct RemoteEngineOptions {
  std::string address;  // host:port
  int pool_size = 2;
  std::chrono::milliseconds connect_timeout{3000};
  std::string token;  // sent in every connection's Hello
  std::chrono::milliseconds ping_interval{1000};
  std::chrono::milliseconds silence_timeout{5000};  // 0: no silence detection
  // What the worker's model card says; checked locally so bad requests fail before the network.
  int max_context = 0;
  int block_size = 0;
  int num_slots = 0;
  int64_t kv_total_blocks = 0;
};

class RemoteEngine final : public engine::AsyncEngine {
 public:
  RemoteEngine(RemoteEngineOptions options, boost::asio::any_io_executor executor);
  ~RemoteEngine() override;  // shutdown()

  Status submit(engine::EngineRequest request) override;
  void cancel(uint64_t id) override;
  void stop(uint64_t id) override;
  void shutdown() override;
  engine::EngineStats stats() const override;
  int max_context() const override { return options_.max_context; }
  int num_slots() const override { return options_.num_slots; }
  int block_size() const override { return options_.block_size; }

  // An encoder call (issue 27) with a caller-chosen id (unique among this engine's open
  // requests): `done` runs once on a connection strand, kUnavailable when the connection breaks
  // or the worker is silent.
  void encode_call(uint64_t id, const encoder::EncoderRequest& request,
                   encoder::EncoderCallback done);
  // Requests (generation and encoder calls) submitted and not finished.
  int open_requests() const;

  const std::string& address() const { return options_.address; }
  // Whether the worker is silent (see above): new requests are refused until it answers.
  bool silent() const;

  class Connection;
  struct Health;

 private:
  const RemoteEngineOptions options_;
  std::shared_ptr<Health> health_;
  std::vector<std::shared_ptr<Connection>> pool_;
  std::shared_ptr<std::atomic<int>> open_count_;  // requests submitted and not finished
  std::atomic<bool> shut_down_{false};
};

// Splits "host:port" (IPv6 as [addr]:port).
Result<std::pair<std::string, uint16_t>> split_host_port(const std::string& address);

}  // namespace turbine::runtime
