// The UCX KV transport (issue 8): `turbine worker --kv-transport ucx`, the operator's "rdma"
// switch. UCX (UCP active messages over a ucp_listener) picks RDMA (InfiniBand/RoCE verbs) where
// the host has it and TCP otherwise; UCX_TLS / UCX_NET_DEVICES and the other UCX_* variables pass
// through unchanged.
//
// Server side (prefill worker): UcxKvServer listens on host:port and answers pull requests
// {transfer_id, first_block, n_blocks, token} from an engine::KvTransferSource (the reply, status +
// bytes, is posted from the engine thread to the server's progress thread and sent from there:
// rendezvous for large replies, so RDMA-capable transports move the bytes zero-copy) and release
// requests. Its peers reach it as "ucx://host:port" (KvTransferMeta::address).
//
// Client side (decode worker): UcxKvTransfer, the same contract as TcpKvTransfer: pulls of at
// most max_pull_bytes, pull_window in flight, each received straight into its place in the
// result; a whole-fetch timeout; endpoints cached per address; any failure is done(error).
// DispatchKvTransfer sends "ucx://" addresses to a UcxKvTransfer (created on first use) and
// everything else to TCP, so fleets mixing both kinds of prefill workers work.
//
// Threads: each UcxKvServer / UcxKvTransfer owns one UCP context + worker driven by its own
// progress thread (the only thread that touches them); fetch/release never block; callbacks run
// on the progress thread. Without UCX at build time (TURBINE_HAVE_UCX undefined) the factories
// return Unimplemented and ucx:// fetches fail (the engine falls back to a local prefill).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "engine/kv_transfer.h"
#include "runtime/kv_transfer_tcp.h"

namespace turbine::runtime {

inline constexpr std::string_view kUcxScheme = "ucx://";

// Whether this build has UCX.
bool ucx_built();
// "ucx://host:port" -> "host:port"; nullopt for any other address.
std::optional<std::string> ucx_host_port(std::string_view address);

struct UcxKvServerOptions {
  std::string host = "0.0.0.0";  // listen address
  uint16_t port = 0;             // 0: any free port
  // The request-plane token (issue 18): a pull or release without it is refused (the pull gets an
  // Unauthenticated reply, so the puller falls back to a local prefill). Empty: any peer.
  std::string token;
};

class UcxKvServer {
 public:
  // Listens and starts the progress thread; Unavailable when UCX cannot initialise or bind.
  static Result<std::unique_ptr<UcxKvServer>> start(
      std::shared_ptr<engine::KvTransferSource> source, UcxKvServerOptions options = {});
  ~UcxKvServer();  // stop()
  UcxKvServer(const UcxKvServer&) = delete;
  UcxKvServer& operator=(const UcxKvServer&) = delete;
  uint16_t port() const;  // the bound port
  // Closes the listener and every endpoint, joins the thread. Idempotent.
  void stop();

  struct Impl;

 private:
  explicit UcxKvServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

struct UcxKvTransferOptions {
  std::chrono::milliseconds timeout{30'000};   // a whole fetch (connect included)
  int64_t max_pull_bytes = int64_t{16} << 20;  // per reply
  int pull_window = 2;                         // pulls in flight per fetch
  std::string token;  // sent with every pull and release (UcxKvServerOptions::token)
};

class UcxKvTransfer final : public engine::KvTransfer {
 public:
  // Unavailable when UCX cannot initialise on this host.
  static Result<std::unique_ptr<UcxKvTransfer>> create(UcxKvTransferOptions options = {});
  ~UcxKvTransfer() override;  // closes the endpoints; fetches in flight get no callback

  // meta.address: "ucx://host:port" (or plain host:port).
  void fetch(const engine::KvTransferMeta& meta, int first_block, int n_blocks,
             engine::KvBytesCallback done) override;
  void release(const engine::KvTransferMeta& meta) override;
  std::string_view name() const override { return "ucx"; }
  engine::KvTransportStats stats() const;  // "ucx"
  std::vector<engine::KvTransportStats> transport_stats() const override;

  struct Impl;

 private:
  explicit UcxKvTransfer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// The decode worker's transport: "ucx://" addresses go to a UcxKvTransfer made on first use (its
// creation failing, or a build without UCX, fails those fetches: the engine falls back); every
// other address goes to `tcp`.
class DispatchKvTransfer final : public engine::KvTransfer {
 public:
  explicit DispatchKvTransfer(std::shared_ptr<engine::KvTransfer> tcp,
                              UcxKvTransferOptions ucx_options = {});
  void fetch(const engine::KvTransferMeta& meta, int first_block, int n_blocks,
             engine::KvBytesCallback done) override;
  void release(const engine::KvTransferMeta& meta) override;
  std::string_view name() const override { return "tcp+ucx"; }
  // tcp's, and ucx's once a ucx:// address was fetched from.
  std::vector<engine::KvTransportStats> transport_stats() const override;

 private:
  Result<engine::KvTransfer*> ucx();

  const std::shared_ptr<engine::KvTransfer> tcp_;
  const UcxKvTransferOptions ucx_options_;
  mutable std::mutex mu_;
  std::unique_ptr<engine::KvTransfer> ucx_;  // guarded by mu_ until made
  Status ucx_error_ = Status::ok();          // why it could not be made
  bool tried_ = false;
};

}  // namespace turbine::runtime
