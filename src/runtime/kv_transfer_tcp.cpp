#include "runtime/kv_transfer_tcp.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "runtime/io_threads.h"
#include "runtime/request_plane.h"
#include "runtime/wire.h"

namespace turbine::runtime {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// Connects to `address` (the caller's deadline closes the socket to give up).
asio::awaitable<Status> connect_to(tcp::socket& socket, const std::string& address) {
  auto hp = split_host_port(address);
  if (!hp) co_return Status{StatusCode::kUnavailable, hp.status().message()};
  error_code ec;
  tcp::resolver resolver(socket.get_executor());
  auto endpoints = co_await resolver.async_resolve(hp->first, std::to_string(hp->second),
                                                   asio::redirect_error(asio::use_awaitable, ec));
  if (!ec)
    co_await asio::async_connect(socket, endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Status{StatusCode::kUnavailable, "KV peer " + address + ": " + ec.message()};
  socket.set_option(tcp::no_delay(true), ec);
  co_return Status::ok();
}

}  // namespace

using KvSocket = std::shared_ptr<boost::asio::ip::tcp::socket>;

struct TcpKvTransfer::Pool {
  std::string token;  // the request-plane token, sent in every new connection's Hello; immutable
  std::mutex mu;
  std::unordered_map<std::string, std::vector<KvSocket>> idle;  // by address
  size_t max_idle = 4;

  KvSocket take(const std::string& address) {
    std::lock_guard lock(mu);
    auto it = idle.find(address);
    if (it == idle.end() || it->second.empty()) return nullptr;
    KvSocket s = std::move(it->second.back());
    it->second.pop_back();
    return s;
  }
  void give_back(const std::string& address, KvSocket s) {
    std::lock_guard lock(mu);
    auto& v = idle[address];
    if (v.size() < max_idle && s->is_open()) v.push_back(std::move(s));
  }
};

namespace {

using Pool = TcpKvTransfer::Pool;
using Counters = TcpKvTransfer::Counters;

// Asio's transfer_all reads at most 64 KiB per system call; a KV frame is megabytes, and on a
// loaded (or virtualised) host every call and wake-up costs tens of microseconds: ask for the rest.
auto whole(size_t total) {
  return [total](const error_code& ec, size_t done) -> size_t { return ec ? 0 : total - done; };
}

// The zeroed result buffer of a fetch. Buffers this large come from fresh mmap'd pages, one page
// fault per 4 KiB on first touch (on the virtualised development host ~15 us each: 0.28 GB/s);
// with transparent huge pages allowed for the range first (THP "madvise" mode), one per 2 MiB.
std::string result_buffer(size_t n) {
  std::string s;
  s.reserve(n);
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const auto begin = reinterpret_cast<uintptr_t>(s.data());
  const uintptr_t a = (begin + kHuge - 1) & ~(kHuge - 1), e = (begin + n) & ~(kHuge - 1);
  if (e > a) ::madvise(reinterpret_cast<void*>(a), e - a, MADV_HUGEPAGE);  // a hint: errors ignored
#endif
  s.resize(n);
  return s;
}

// A connection to `address`: an idle one from the pool (reused = true), else a new one.
asio::awaitable<Status> open_connection(KvSocket& sock, bool& reused, const std::string& address,
                                        Pool& pool, Counters& counters) {
  sock = pool.take(address);
  reused = sock != nullptr;
  if (reused) co_return Status::ok();
  auto ex = co_await asio::this_coro::executor;
  sock = std::make_shared<tcp::socket>(ex);
  counters.connects++;
  Status st = co_await connect_to(*sock, address);
  if (!st.is_ok()) co_return st;
  // The request plane's first frame is a Hello (runtime/wire.h), whatever follows.
  std::string hello;
  encode(HelloFrame{pool.token}, hello);
  error_code ec;
  co_await asio::async_write(*sock, asio::buffer(hello),
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Status{StatusCode::kUnavailable, "KV peer " + address + ": " + ec.message()};
  co_return Status::ok();
}

// Blocks [first, first + n) over one connection, at most `window` pulls in flight, into `out`
// (sized meta.layout.wire_bytes(n): n * bytes_per_block, none for a simulated layout, whose
// answers carry no bytes). `got_any`: some bytes of the answer arrived (no retry after that).
asio::awaitable<Status> pull_blocks(tcp::socket& socket, const engine::KvTransferMeta& meta,
                                    int first, int n, const TcpKvTransferOptions& options,
                                    std::string& out, bool& got_any) {
  const int64_t bpb = meta.layout.bytes_per_block;
  const int per_pull =
      static_cast<int>(std::max<int64_t>(1, options.max_pull_bytes / std::max<int64_t>(1, bpb)));
  const int window = std::max(1, options.pull_window);
  struct Pending {
    uint64_t id = 0;
    int at = 0, count = 0;
  };
  std::vector<Pending> pending;
  uint64_t pull_id = 0;
  int next = first;
  std::string wire, frame;
  error_code ec;
  auto peer_error = [&](const std::string& what) {
    return Status{StatusCode::kUnavailable, "KV peer " + meta.address + ": " + what};
  };
  while (next < first + n || !pending.empty()) {
    // Keep the window full: the source reads and encodes the next range meanwhile.
    wire.clear();
    while (next < first + n && static_cast<int>(pending.size()) < window) {
      const int count = std::min(per_pull, first + n - next);
      pending.push_back({++pull_id, next, count});
      encode(KvPullFrame{pull_id, meta.transfer_id, next, count}, wire);
      next += count;
    }
    if (!wire.empty()) {
      co_await asio::async_write(socket, asio::buffer(wire),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return peer_error(ec.message());
    }
    // A KvData frame's bytes are read straight into their place in `out` (no frame buffer, no
    // decode copy): length prefix, the fixed head {u8 version, u8 type, u64 id, u8 code,
    // u32 message length} (runtime/wire.h), the message, u32 byte count, the bytes. Any other
    // frame (or version) is read whole and decoded as usual.
    constexpr size_t kHead = 4 + 1 + 1 + 8 + 1 + 4;
    frame.resize(kHead);
    co_await asio::async_read(socket, asio::buffer(frame.data(), kHead),
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return peer_error(ec.message());
    got_any = true;
    uint32_t len = 0, msg_len = 0;
    uint64_t id = 0;
    std::memcpy(&len, frame.data(), 4);
    std::memcpy(&id, frame.data() + 6, 8);
    std::memcpy(&msg_len, frame.data() + 15, 4);
    if (len > kMaxFrameBytes || len + 4 < kHead) co_return peer_error("bad frame length");
    const auto version = static_cast<uint8_t>(frame[4]);
    const auto type = static_cast<uint8_t>(frame[5]);
    const auto code = static_cast<uint8_t>(frame[14]);
    const size_t rest = len + 4 - kHead;
    if (version < kOldestReadableWireVersion || version > kWireVersion ||
        type != static_cast<uint8_t>(FrameType::kKvData) ||
        static_cast<size_t>(msg_len) + 4 > rest) {
      frame.resize(len + 4);
      co_await asio::async_read(socket, asio::buffer(frame.data() + kHead, rest), whole(rest),
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return peer_error(ec.message());
      auto decoded = decode(
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(frame.data()), frame.size()));
      if (!decoded) co_return peer_error(decoded.status().message());
      if (const auto* c = std::get_if<CloseFrame>(&*decoded)) {
        co_return peer_error("closed the connection: " + c->status.message());
      }
      continue;  // not a KV answer of this wire version: nothing of ours
    }
    frame.resize(msg_len + 4);
    co_await asio::async_read(socket, asio::buffer(frame.data(), msg_len + 4), whole(msg_len + 4),
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return peer_error(ec.message());
    uint32_t n_bytes = 0;
    std::memcpy(&n_bytes, frame.data() + msg_len, 4);
    if (static_cast<size_t>(msg_len) + 4 + n_bytes != rest)
      co_return peer_error("malformed kv data");
    auto it =
        std::find_if(pending.begin(), pending.end(), [&](const Pending& p) { return p.id == id; });
    if (it == pending.end() || code != 0 ||
        static_cast<int64_t>(n_bytes) != meta.layout.wire_bytes(it->count)) {
      // Not ours, an error, or a wrong size: drain the bytes, then judge.
      std::string drain(n_bytes, '\0');
      co_await asio::async_read(socket, asio::buffer(drain), whole(n_bytes),
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return peer_error(ec.message());
      if (it == pending.end()) continue;
      if (code > static_cast<uint8_t>(StatusCode::kDataLoss) || code == 0) {
        if (code == 0) co_return peer_error("sent a short block range");
        co_return peer_error("bad status code");
      }
      co_return Status(static_cast<StatusCode>(code), frame.substr(0, msg_len));
    }
    if (n_bytes > 0) {
      char* dst = out.data() + static_cast<size_t>((it->at - first) * bpb);
      co_await asio::async_read(socket, asio::buffer(dst, n_bytes), whole(n_bytes),
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return peer_error(ec.message());
    }
    pending.erase(it);
  }
  co_return Status::ok();
}

asio::awaitable<void> do_fetch(engine::KvTransferMeta meta, int first, int n,
                               engine::KvBytesCallback done, TcpKvTransferOptions options,
                               std::shared_ptr<Counters> counters, std::shared_ptr<Pool> pool) {
  const auto t0 = std::chrono::steady_clock::now();
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer deadline(ex);
  auto timed_out = std::make_shared<bool>(false);
  // The deadline's handler may run after this frame is gone: it holds what it closes.
  auto current = std::make_shared<KvSocket>();
  deadline.expires_after(options.timeout);
  deadline.async_wait([current, timed_out](error_code ec) {
    if (ec) return;
    *timed_out = true;
    error_code ignored;
    if (*current) (*current)->close(ignored);
  });
  std::string bytes = result_buffer(static_cast<size_t>(meta.layout.wire_bytes(n)));
  Status st = Status::ok();
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = false, got_any = false;
    st = co_await open_connection(*current, reused, meta.address, *pool, *counters);
    if (st.is_ok()) st = co_await pull_blocks(**current, meta, first, n, options, bytes, got_any);
    if (st.is_ok()) break;
    error_code ignored;
    if (*current) (*current)->close(ignored);
    // A pooled connection the peer closed meanwhile: once more on a fresh one.
    if (!(reused && !got_any && !*timed_out)) break;
  }
  deadline.cancel();
  if (!st.is_ok() && *timed_out)
    st = {StatusCode::kUnavailable, "KV peer " + meta.address + ": timed out"};
  if (st.is_ok()) pool->give_back(meta.address, std::move(*current));
  counters->fetches++;
  if (!st.is_ok()) {
    counters->failures++;
    done(std::move(st));
    co_return;
  }
  counters->bytes += bytes.size();
  counters->seconds = counters->seconds.load() +
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  done(std::move(bytes));
}

asio::awaitable<void> do_release(std::string address, uint64_t transfer_id,
                                 std::chrono::milliseconds timeout,
                                 std::shared_ptr<Counters> counters, std::shared_ptr<Pool> pool) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer deadline(ex);
  auto current = std::make_shared<KvSocket>();
  deadline.expires_after(timeout);
  deadline.async_wait([current](error_code ec) {
    if (ec) return;
    error_code ignored;
    if (*current) (*current)->close(ignored);
  });
  std::string out;
  encode(KvReleaseFrame{transfer_id}, out);
  bool sent = false;
  for (int attempt = 0; attempt < 2 && !sent; ++attempt) {
    bool reused = false;
    Status st = co_await open_connection(*current, reused, address, *pool, *counters);
    if (!st.is_ok()) break;
    error_code ec;
    co_await asio::async_write(**current, asio::buffer(out),
                               asio::redirect_error(asio::use_awaitable, ec));
    sent = !ec;
    if (!sent) {
      error_code ignored;
      (*current)->close(ignored);
      if (!reused) break;  // a pooled connection may have died: once more on a fresh one
    }
    // The peer's TTL frees the transfer if this frame is lost.
  }
  deadline.cancel();
  if (sent) pool->give_back(address, std::move(*current));
}

}  // namespace

TcpKvTransfer::TcpKvTransfer(TcpKvTransferOptions options)
    : options_(options),
      pool_(std::make_shared<Pool>()),
      io_(std::make_unique<IoThreads>(std::max(1, options.n_threads))) {
  pool_->max_idle = static_cast<size_t>(std::max(0, options.max_idle_connections));
  pool_->token = options_.token;
}

TcpKvTransfer::~TcpKvTransfer() {
  io_->stop();
  std::lock_guard lock(pool_->mu);
  pool_->idle.clear();  // before the io_context that owns the sockets
}

void TcpKvTransfer::fetch(const engine::KvTransferMeta& meta, int first_block, int n_blocks,
                          engine::KvBytesCallback done) {
  if (meta.address.empty()) {
    done(Status{StatusCode::kUnavailable, "the KV transfer has no address to pull from"});
    return;
  }
  asio::co_spawn(asio::make_strand(io_->context()),
                 do_fetch(meta, first_block, n_blocks, std::move(done), options_, counters_, pool_),
                 asio::detached);
}

void TcpKvTransfer::release(const engine::KvTransferMeta& meta) {
  if (meta.address.empty()) return;
  asio::co_spawn(asio::make_strand(io_->context()),
                 do_release(meta.address, meta.transfer_id, options_.timeout, counters_, pool_),
                 asio::detached);
}

engine::KvTransportStats TcpKvTransfer::stats() const {
  engine::KvTransportStats s;
  s.transport = "tcp";
  s.fetches = counters_->fetches.load();
  s.failures = counters_->failures.load();
  s.bytes = counters_->bytes.load();
  s.seconds = counters_->seconds.load();
  s.connects = counters_->connects.load();
  return s;
}

std::vector<engine::KvTransportStats> TcpKvTransfer::transport_stats() const {
  return {stats()};
}

}  // namespace turbine::runtime
