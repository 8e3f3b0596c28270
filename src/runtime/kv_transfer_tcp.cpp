#include "runtime/kv_transfer_tcp.h"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
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

asio::awaitable<void> do_fetch(engine::KvTransferMeta meta, int first, int n,
                               engine::KvBytesCallback done, TcpKvTransferOptions options,
                               std::shared_ptr<TcpKvTransfer::Counters> counters) {
  const auto t0 = std::chrono::steady_clock::now();
  auto ex = co_await asio::this_coro::executor;
  // Shared with the deadline's handler, which may run after this frame is gone.
  auto sock = std::make_shared<tcp::socket>(ex);
  tcp::socket& socket = *sock;
  asio::steady_timer deadline(ex);
  auto timed_out = std::make_shared<bool>(false);
  deadline.expires_after(options.timeout);
  deadline.async_wait([sock, timed_out](error_code ec) {
    if (ec) return;
    *timed_out = true;
    error_code ignored;
    sock->close(ignored);
  });
  std::string bytes;
  Status st = co_await connect_to(socket, meta.address);
  const int per_pull = static_cast<int>(std::max<int64_t>(
      1, options.max_pull_bytes / std::max<int64_t>(1, meta.layout.bytes_per_block)));
  std::string buf, out;
  std::vector<Frame> frames;
  char chunk[65536];
  uint64_t pull_id = 0;
  for (int at = first; st.is_ok() && at < first + n; at += per_pull) {
    const int count = std::min(per_pull, first + n - at);
    out.clear();
    encode(KvPullFrame{++pull_id, meta.transfer_id, at, count}, out);
    error_code ec;
    co_await asio::async_write(socket, asio::buffer(out),
                               asio::redirect_error(asio::use_awaitable, ec));
    bool got = false;
    while (!ec && !got) {
      // Whole frames first; then read more.
      auto size = frame_size(
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(buf.data()), buf.size()));
      if (!size) {
        st = {StatusCode::kUnavailable, "KV peer " + meta.address + ": " + size.status().message()};
        break;
      }
      if (*size == 0) {
        const size_t r = co_await socket.async_read_some(
            asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
        buf.append(chunk, r);
        continue;
      }
      auto frame =
          decode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(buf.data()), *size));
      buf.erase(0, *size);
      if (!frame) {
        st = {StatusCode::kUnavailable,
              "KV peer " + meta.address + ": " + frame.status().message()};
        break;
      }
      auto* d = std::get_if<KvDataFrame>(&*frame);
      if (d == nullptr || d->id != pull_id) continue;  // not ours (outputs of nobody's requests)
      got = true;
      if (!d->status.is_ok()) {
        st = d->status;
      } else if (static_cast<int64_t>(d->bytes.size()) != count * meta.layout.bytes_per_block) {
        st = {StatusCode::kUnavailable, "KV peer " + meta.address + " sent a short block range"};
      } else {
        bytes.append(d->bytes);
      }
    }
    if (ec && st.is_ok()) {
      st = {StatusCode::kUnavailable,
            "KV peer " + meta.address + ": " + (*timed_out ? "timed out" : ec.message())};
    }
  }
  deadline.cancel();
  error_code ignored;
  socket.close(ignored);
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
                                 std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  auto sock = std::make_shared<tcp::socket>(ex);
  tcp::socket& socket = *sock;
  asio::steady_timer deadline(ex);
  deadline.expires_after(timeout);
  deadline.async_wait([sock](error_code ec) {
    if (ec) return;
    error_code ignored;
    sock->close(ignored);
  });
  Status st = co_await connect_to(socket, address);
  if (st.is_ok()) {
    std::string out;
    encode(KvReleaseFrame{transfer_id}, out);
    error_code ec;
    co_await asio::async_write(socket, asio::buffer(out),
                               asio::redirect_error(asio::use_awaitable, ec));
    // The peer's TTL frees the transfer if this frame is lost.
  }
  deadline.cancel();
  error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  socket.close(ignored);
}

}  // namespace

TcpKvTransfer::TcpKvTransfer(TcpKvTransferOptions options)
    : options_(options), io_(std::make_unique<IoThreads>(std::max(1, options.n_threads))) {}

TcpKvTransfer::~TcpKvTransfer() {
  io_->stop();
}

void TcpKvTransfer::fetch(const engine::KvTransferMeta& meta, int first_block, int n_blocks,
                          engine::KvBytesCallback done) {
  if (meta.address.empty()) {
    done(Status{StatusCode::kUnavailable, "the KV transfer has no address to pull from"});
    return;
  }
  asio::co_spawn(asio::make_strand(io_->context()),
                 do_fetch(meta, first_block, n_blocks, std::move(done), options_, counters_),
                 asio::detached);
}

void TcpKvTransfer::release(const engine::KvTransferMeta& meta) {
  if (meta.address.empty()) return;
  asio::co_spawn(asio::make_strand(io_->context()),
                 do_release(meta.address, meta.transfer_id, options_.timeout), asio::detached);
}

KvTransferStats TcpKvTransfer::stats() const {
  KvTransferStats s;
  s.fetches = counters_->fetches.load();
  s.failures = counters_->failures.load();
  s.bytes = counters_->bytes.load();
  s.seconds = counters_->seconds.load();
  return s;
}

}  // namespace turbine::runtime
