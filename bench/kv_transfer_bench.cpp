// KV transfer bandwidth against its limit, in one process and one run (issue 8):
//  - tcp-kv: runtime::TcpKvTransfer fetching pinned blocks from a WorkerServer over loopback (the
//    decode worker's real path: KvPull/KvData frames, host-staged), from a KvTransferSource whose
//    blocks are 2 MiB (an 8B model's 16-token block: 32 layers x K,V x 16 x 8 heads x 128 x BF16);
//  - ucx-kv: runtime::UcxKvTransfer pulling the same blocks from a UcxKvServer (UCX_TLS applies;
//    on loopback UCX picks shared memory unless UCX_TLS=tcp; "-" when UCX is not available);
//  - raw: plain POSIX sockets pumping the same byte count over loopback (one connection per
//    transfer, as the fetch makes; zero-filled buffers, no user-space copies beyond recv/send).
// Prints, per transfer size, the median GB/s of each and the ratio.
//   build/kv_transfer_bench [reps_scale=1] [blocks...]   (default blocks: 1 16 128)
// Env: KV_PULL_MIB (bytes per KvData frame, default the transfer's 16), KV_WINDOW (pulls in
// flight), KV_IDLE (idle connections kept per address; 0: a connection per fetch).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "runtime/kv_transfer_tcp.h"
#include "runtime/kv_transfer_ucx.h"
#include "runtime/request_plane.h"

namespace {

using namespace turbine;
using Clock = std::chrono::steady_clock;

constexpr int64_t kBlockBytes = int64_t{2} << 20;
constexpr int kMaxBlocks = 128;

engine::KvLayout layout() {
  return {"bf16", 16, 32, 8, 128, kBlockBytes};
}

// One transfer (id 1) of kMaxBlocks blocks held in host memory; reads copy the range out, as an
// engine's read_kv_blocks does, and answer on the caller's thread.
class BlockSource final : public engine::KvTransferSource {
 public:
  BlockSource() : data_(static_cast<size_t>(kBlockBytes) * kMaxBlocks) {
    for (size_t i = 0; i < data_.size(); i += 4096) data_[i] = static_cast<char>(i >> 12);
  }
  void read_transfer(uint64_t transfer_id, int first, int n,
                     engine::KvBytesCallback done) override {
    if (transfer_id != 1 || first < 0 || n < 0 || first + n > kMaxBlocks)
      return done(Status{StatusCode::kNotFound, "no such transfer"});
    done(std::string(data_.data() + first * kBlockBytes, static_cast<size_t>(n * kBlockBytes)));
  }
  void release_transfer(uint64_t) override {}
  engine::KvLayout kv_layout() const override { return layout(); }

 private:
  std::vector<char> data_;
};

class NoEngine final : public engine::AsyncEngine {
 public:
  Status submit(engine::EngineRequest) override { return unimplemented("KV only"); }
  void cancel(uint64_t) override {}
  void shutdown() override {}
  engine::EngineStats stats() const override { return {}; }
  int max_context() const override { return 4096; }
  int num_slots() const override { return 1; }
  int block_size() const override { return 16; }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Raw loopback TCP: a server thread answers each connection's 8-byte length with that many bytes.
class RawServer {
 public:
  RawServer() : buf_(static_cast<size_t>(kBlockBytes) * kMaxBlocks, 'x') {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0) {
      std::perror("raw server");
      std::exit(1);
    }
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~RawServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  uint16_t port() const { return port_; }

 private:
  void serve() {
    while (!stop_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      int one = 1;
      ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      uint64_t n = 0;
      if (::recv(c, &n, sizeof n, MSG_WAITALL) == static_cast<ssize_t>(sizeof n)) {
        size_t sent = 0;
        while (sent < n) {
          const ssize_t w = ::send(c, buf_.data() + sent, n - sent, MSG_NOSIGNAL);
          if (w <= 0) break;
          sent += static_cast<size_t>(w);
        }
      }
      ::close(c);
    }
  }
  std::vector<char> buf_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

bool raw_fetch(uint16_t port, uint64_t n, std::vector<char>& into) {
  const int c = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  int one = 1;
  ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  bool ok = ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
            ::send(c, &n, sizeof n, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof n);
  size_t got = 0;
  while (ok && got < n) {
    const ssize_t r = ::recv(c, into.data() + got, n - got, 0);
    if (r <= 0) ok = false;
    got += r > 0 ? static_cast<size_t>(r) : 0;
  }
  ::close(c);
  return ok && got == n;
}

}  // namespace

int main(int argc, char** argv) {
  const double scale = argc > 1 ? std::atof(argv[1]) : 1.0;
  std::vector<int> sizes;
  for (int i = 2; i < argc; ++i) sizes.push_back(std::atoi(argv[i]));
  if (sizes.empty()) sizes = {1, 16, 128};

  auto source = std::make_shared<BlockSource>();
  runtime::WorkerServerOptions so;
  so.host = "127.0.0.1";
  runtime::WorkerServer server(so, std::make_shared<NoEngine>());
  server.set_kv_source(source, "127.0.0.1");
  if (!server.start().is_ok()) return 1;
  runtime::TcpKvTransferOptions to;
  if (const char* e = std::getenv("KV_PULL_MIB")) to.max_pull_bytes = std::atoll(e) << 20;
  if (const char* e = std::getenv("KV_WINDOW")) to.pull_window = std::atoi(e);
  if (const char* e = std::getenv("KV_IDLE")) to.max_idle_connections = std::atoi(e);
  runtime::TcpKvTransfer transfer(to);
  RawServer raw;
  auto ucx_server = runtime::UcxKvServer::start(source, {"127.0.0.1", 0, ""});
  std::unique_ptr<runtime::UcxKvTransfer> ucx;
  if (ucx_server.has_value()) {
    runtime::UcxKvTransferOptions uo;
    uo.max_pull_bytes = to.max_pull_bytes;
    uo.pull_window = to.pull_window;
    if (auto made = runtime::UcxKvTransfer::create(uo); made.has_value())
      ucx = std::move(made).value();
  } else {
    std::fprintf(stderr, "ucx-kv: %s\n", ucx_server.status().to_string().c_str());
  }

  engine::KvTransferMeta meta;
  meta.transfer_id = 1;
  meta.address = "127.0.0.1:" + std::to_string(server.port());
  meta.layout = layout();
  meta.num_tokens = kMaxBlocks * 16;
  for (int i = 0; i < kMaxBlocks; ++i) meta.block_ids.push_back(i);

  engine::KvTransferMeta ucx_meta = meta;
  if (ucx) ucx_meta.address = "ucx://127.0.0.1:" + std::to_string((*ucx_server)->port());

  std::vector<char> sink(static_cast<size_t>(kBlockBytes) * kMaxBlocks);
  std::printf("%8s %12s %12s %12s %12s %8s %6s\n", "blocks", "bytes", "tcp-kv GB/s", "ucx-kv GB/s",
              "raw GB/s", "ratio", "reps");
  for (int blocks : sizes) {
    if (blocks < 1 || blocks > kMaxBlocks) continue;
    const uint64_t bytes = static_cast<uint64_t>(blocks) * kBlockBytes;
    const int reps = std::max(3, static_cast<int>(scale * (blocks == 1    ? 200
                                                           : blocks <= 16 ? 40
                                                                          : 8)));
    std::vector<double> kv_gbs, raw_gbs, ucx_gbs;
    // Interleaved, so both see the same machine state; one warm-up each.
    for (int r = -1; r < reps; ++r) {
      std::promise<Result<std::string>> p;
      auto t0 = Clock::now();
      transfer.fetch(meta, 0, blocks, [&](Result<std::string> b) { p.set_value(std::move(b)); });
      Result<std::string> got = p.get_future().get();
      double s = std::chrono::duration<double>(Clock::now() - t0).count();
      if (!got.has_value() || got->size() != bytes) {
        std::fprintf(stderr, "tcp-kv fetch failed: %s\n",
                     got.has_value() ? "short" : got.status().to_string().c_str());
        return 1;
      }
      if (r >= 0) kv_gbs.push_back(static_cast<double>(bytes) / s / 1e9);
      if (ucx) {
        std::promise<Result<std::string>> up;
        t0 = Clock::now();
        ucx->fetch(ucx_meta, 0, blocks, [&](Result<std::string> b) { up.set_value(std::move(b)); });
        Result<std::string> ugot = up.get_future().get();
        s = std::chrono::duration<double>(Clock::now() - t0).count();
        if (!ugot.has_value() || ugot->size() != bytes) {
          std::fprintf(stderr, "ucx-kv fetch failed: %s\n",
                       ugot.has_value() ? "short" : ugot.status().to_string().c_str());
          return 1;
        }
        if (r >= 0) ucx_gbs.push_back(static_cast<double>(bytes) / s / 1e9);
      }
      t0 = Clock::now();
      if (!raw_fetch(raw.port(), bytes, sink)) {
        std::fprintf(stderr, "raw fetch failed\n");
        return 1;
      }
      s = std::chrono::duration<double>(Clock::now() - t0).count();
      if (r >= 0) raw_gbs.push_back(static_cast<double>(bytes) / s / 1e9);
    }
    const double k = median(kv_gbs), w = median(raw_gbs);
    char u[32] = "-";
    if (ucx) std::snprintf(u, sizeof u, "%.2f", median(ucx_gbs));
    std::printf("%8d %12llu %12.2f %12s %12.2f %8.2f %6d\n", blocks,
                static_cast<unsigned long long>(bytes), k, u, w, k / w, reps);
    std::fflush(stdout);
  }
  const engine::KvTransportStats st = transfer.stats();
  std::printf("tcp-kv: %llu fetches, %llu failures, %.1f MB\n",
              static_cast<unsigned long long>(st.fetches),
              static_cast<unsigned long long>(st.failures), static_cast<double>(st.bytes) / 1e6);
  server.stop();
  return 0;
}
