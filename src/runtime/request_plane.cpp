#include "runtime/request_plane.h"

#include <charconv>
#include <cstring>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "runtime/encoder_wire.h"
#include "runtime/io_threads.h"
#include "runtime/wire.h"

namespace turbine::runtime {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// Merges a newer output of the same request into one not yet sent.
void merge(engine::EngineOutput& into, engine::EngineOutput&& out) {
  for (auto& t : out.tokens) into.tokens.push_back(std::move(t));
  into.finish = out.finish;
  into.error = std::move(out.error);
  into.prompt_tokens = out.prompt_tokens;
  into.completion_tokens = out.completion_tokens;
  into.cached_tokens = out.cached_tokens;
  if (out.kv_transfer) into.kv_transfer = std::move(out.kv_transfer);
}

}  // namespace

Result<std::pair<std::string, uint16_t>> split_host_port(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return invalid_argument("address `" + address + "` is not host:port");
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  const char* b = address.data() + colon + 1;
  const char* e = address.data() + address.size();
  auto [p, ec] = std::from_chars(b, e, port);
  if (ec != std::errc() || p != e || port == 0 || port > 65535) {
    return invalid_argument("address `" + address + "` has a bad port");
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

// ============================== WorkerServer ==============================================

class WorkerServer::Impl {
 public:
  class Conn;

  Impl(WorkerServerOptions options, std::shared_ptr<engine::AsyncEngine> engine)
      : options_(std::move(options)), engine_(std::move(engine)), io_(options_.n_threads) {}

  Status start() {
    error_code ec;
    auto addr = asio::ip::make_address(options_.host, ec);
    if (ec) return invalid_argument("bad request-plane host `" + options_.host + "`");
    acceptor_.emplace(io_.context());
    tcp::endpoint ep(addr, options_.port);
    acceptor_->open(ep.protocol(), ec);
    if (!ec) acceptor_->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_->bind(ep, ec);
    if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return {StatusCode::kUnavailable, "cannot listen on " + options_.host + ":" +
                                            std::to_string(options_.port) + ": " + ec.message()};
    }
    port_ = acceptor_->local_endpoint().port();
    if (kv_source_ && kv_address_.empty() && !kv_host_.empty()) {
      const bool v6 = kv_host_.find(':') != std::string::npos;
      kv_address_ = (v6 ? "[" + kv_host_ + "]" : kv_host_) + ":" + std::to_string(port_);
    }
    asio::co_spawn(io_.context(), accept_loop(), asio::detached);
    return Status::ok();
  }

  void stop();

  asio::awaitable<void> accept_loop();

  WorkerServerOptions options_;
  std::shared_ptr<engine::AsyncEngine> engine_;          // null on an encoder worker
  std::shared_ptr<encoder::AsyncEncoder> encoder_;       // set_encoder, before start(); may be null
  std::shared_ptr<engine::KvTransferSource> kv_source_;  // set before start(); may be null
  std::string kv_host_;                                  // set_kv_source, before start()
  std::string kv_address_;  // kv_host_:port_ by start(), or set_kv_address's
  IoThreads io_;
  std::optional<tcp::acceptor> acceptor_;
  uint16_t port_ = 0;
  std::atomic<uint64_t> next_engine_id_{1};
  std::atomic<size_t> open_requests_{0};
  std::atomic<size_t> connections_{0};
  std::mutex conns_mu_;  // guards conns_
  std::vector<std::weak_ptr<Conn>> conns_;
  std::atomic<bool> stopped_{false};
  // Rejected peers, logged at most every 10 s (a scanner must not flood the log).
  std::atomic<uint64_t> rejected_{0};
  std::atomic<int64_t> rejected_logged_at_ms_{-1'000'000};

  void log_rejected(const std::string& peer, const std::string& why) {
    const uint64_t n = ++rejected_;
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    int64_t last = rejected_logged_at_ms_.load();
    if (now - last < 10'000 || !rejected_logged_at_ms_.compare_exchange_strong(last, now)) return;
    spdlog::warn("request plane: rejected a peer from {}: {} ({} rejected since start)", peer, why,
                 n);
  }
};

class WorkerServer::Impl::Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(Impl& server, tcp::socket socket, asio::any_io_executor strand)
      : server_(server),
        strand_(std::move(strand)),
        socket_(std::move(socket)),
        wake_(strand_),
        stall_(strand_),
        hello_timer_(strand_) {
    wake_.expires_at(std::chrono::steady_clock::time_point::max());
    error_code ec;
    const tcp::endpoint ep = socket_.remote_endpoint(ec);
    if (!ec) peer_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  void start() {
    error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    // A peer that never says Hello does not keep its connection.
    hello_timer_.expires_after(server_.options_.hello_timeout);
    hello_timer_.async_wait([self = shared_from_this()](error_code tec) {
      if (tec || self->authenticated_ || self->closed_) return;
      self->server_.log_rejected(self->peer_, "no Hello frame in time");
      self->close();
    });
    asio::co_spawn(strand_, read_loop(shared_from_this()), asio::detached);
    asio::co_spawn(strand_, write_loop(shared_from_this()), asio::detached);
  }

  // Any thread.
  void post_close() {
    asio::post(strand_, [self = shared_from_this()] { self->close(); });
  }

 private:
  asio::awaitable<void> read_loop(std::shared_ptr<Conn> self) {
    std::string buf;
    std::vector<Frame> frames;
    char chunk[16384];
    while (!closed_) {
      error_code ec;
      const size_t n = co_await socket_.async_read_some(
          asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      if (rejecting_) continue;  // a Close is on its way out; the rest is not read
      buf.append(chunk, n);
      if (!authenticated_ && buf.size() >= kFrameHeaderBytes) {
        uint32_t len = 0;
        std::memcpy(&len, buf.data(), sizeof len);
        if (len > kMaxHelloBytes) {
          server_.log_rejected(
              peer_, "a first frame of " + std::to_string(len) + " bytes (expected a Hello)");
          break;
        }
      }
      frames.clear();
      if (Status st = take_frames(buf, frames); !st.is_ok()) {
        if (authenticated_) {
          spdlog::warn("request plane: closing a connection: {}", st.message());
        } else {
          server_.log_rejected(peer_, st.message());
        }
        break;
      }
      for (Frame& f : frames) {
        if (rejecting_) break;
        handle(std::move(f));
      }
    }
    close();
  }

  // The first frame must be a Hello carrying the server's token (when it has one). Otherwise the
  // peer gets a Close saying why, and the connection closes once it is written.
  void authenticate(const Frame& f) {
    const auto* hello = std::get_if<HelloFrame>(&f);
    const std::string& token = server_.options_.token;
    if (hello != nullptr && (token.empty() || tokens_equal(hello->token, token))) {
      authenticated_ = true;
      hello_timer_.cancel();
      return;
    }
    const std::string why = hello == nullptr       ? "the first frame is not a Hello"
                            : hello->token.empty() ? "no request-plane token"
                                                   : "a wrong request-plane token";
    server_.log_rejected(peer_, why);
    rejecting_ = true;
    queue_raw(CloseFrame{{StatusCode::kUnauthenticated, "request plane: " + why}});
  }

  void handle(Frame&& f) {
    if (!authenticated_) return authenticate(f);
    if (auto* ping = std::get_if<PingFrame>(&f)) {
      queue_raw(PongFrame{ping->nonce});
    } else if (std::get_if<HelloFrame>(&f) != nullptr) {
      // A second Hello changes nothing.
    } else if (auto* enc = std::get_if<EncodeRequestFrame>(&f)) {
      handle_encode(std::move(*enc));
    } else if (auto* req = std::get_if<RequestFrame>(&f)) {
      const uint64_t wire_id = req->id;
      if (!server_.engine_) {
        engine::EngineOutput out;
        out.finish = engine::FinishReason::kError;
        out.error = invalid_argument(
            "this worker serves an encoder model: it does not generate text", "model");
        queue(wire_id, std::move(out));
        return;
      }
      if (open_.count(wire_id)) {
        engine::EngineOutput out;
        out.finish = engine::FinishReason::kError;
        out.error = invalid_argument("request id " + std::to_string(wire_id) + " is in use");
        queue(wire_id, std::move(out));
        return;
      }
      const uint64_t engine_id = server_.next_engine_id_.fetch_add(1);
      open_[wire_id] = engine_id;
      server_.open_requests_++;
      engine::EngineRequest er;
      er.id = engine_id;
      er.prompt = std::move(req->prompt);
      er.params = std::move(req->params);
      er.disagg = std::move(req->disagg);
      er.trace = req->trace;
      er.on_output = [self = shared_from_this(), wire_id](engine::EngineOutput&& out) {
        asio::post(self->strand_, [self, wire_id, out = std::move(out)]() mutable {
          self->on_output(wire_id, std::move(out));
        });
      };
      if (Status st = server_.engine_->submit(std::move(er)); !st.is_ok()) {
        engine::EngineOutput out;
        out.finish = engine::FinishReason::kError;
        out.error = std::move(st);
        on_output(wire_id, std::move(out));
      }
    } else if (auto* c = std::get_if<CancelFrame>(&f)) {
      auto it = open_.find(c->id);
      if (it != open_.end() && server_.engine_) {
        if (c->stop) {
          server_.engine_->stop(it->second);
        } else {
          server_.engine_->cancel(it->second);
        }
      }
    } else if (auto* pull = std::get_if<KvPullFrame>(&f)) {
      if (!server_.kv_source_) {
        KvDataFrame d;
        d.id = pull->id;
        d.status = unimplemented("this worker serves no KV transfers");
        return queue_raw(std::move(d));
      }
      server_.kv_source_->read_transfer(
          pull->transfer_id, pull->first_block, pull->n_blocks,
          [self = shared_from_this(), id = pull->id](Result<std::string> bytes) {
            KvDataFrame d;
            d.id = id;
            if (bytes.has_value())
              d.bytes = std::move(bytes).value();
            else
              d.status = bytes.status();
            asio::post(self->strand_,
                       [self, d = std::move(d)]() mutable { self->queue_raw(std::move(d)); });
          });
    } else if (auto* rel = std::get_if<KvReleaseFrame>(&f)) {
      if (server_.kv_source_) server_.kv_source_->release_transfer(rel->transfer_id);
    } else {
      spdlog::warn("request plane: a client sent an output frame; ignored");
    }
  }

  // One encoder call: runs on the worker's AsyncEncoder; the answer is posted back to this
  // strand and written as one EncodeResponse frame (before coalesced outputs, like KV data).
  void handle_encode(EncodeRequestFrame&& f) {
    const uint64_t id = f.id;
    if (!server_.encoder_) {
      return queue_raw(EncodeResponseFrame{
          id, encode_encoder_response(invalid_argument(
                  "this worker serves a generative model: it does not embed, classify or score",
                  "model"))});
    }
    auto request = decode_encoder_request(f.body);
    if (!request.has_value()) {
      return queue_raw(EncodeResponseFrame{id, encode_encoder_response(request.status())});
    }
    server_.open_requests_++;
    server_.encoder_->submit(std::move(request).value(),
                             [self = shared_from_this(), id](Result<encoder::EncoderResponse> r) {
                               asio::post(self->strand_, [self, id, r = std::move(r)]() mutable {
                                 self->server_.open_requests_--;
                                 std::string body = encode_encoder_response(r);
                                 if (body.size() + 64 > kMaxFrameBytes) {
                                   body = encode_encoder_response(invalid_argument(
                                       "the response is larger than a request-plane frame (" +
                                           std::to_string(body.size() >> 20) +
                                           " MiB): ask for fewer inputs or fewer dimensions",
                                       "input"));
                                 }
                                 self->queue_raw(EncodeResponseFrame{id, std::move(body)});
                               });
                             });
  }

  void on_output(uint64_t wire_id, engine::EngineOutput&& out) {
    if (out.finish != engine::FinishReason::kNone && open_.erase(wire_id)) {
      server_.open_requests_--;
    }
    if (out.kv_transfer && out.kv_transfer->address.empty() && !server_.kv_address_.empty()) {
      auto meta = std::make_shared<engine::KvTransferMeta>(*out.kv_transfer);
      meta->address = server_.kv_address_;
      out.kv_transfer = std::move(meta);
    }
    if (closed_) return;
    queue(wire_id, std::move(out));
  }

  void queue(uint64_t wire_id, engine::EngineOutput&& out) {
    auto [it, fresh] = pending_.try_emplace(wire_id);
    if (fresh) {
      it->second = std::move(out);
      pending_order_.push_back(wire_id);
    } else {
      merge(it->second, std::move(out));
    }
    wake_.cancel();
  }

  // A frame written before the next coalesced outputs (KV data, pongs, a Close).
  template <typename F>
  void queue_raw(const F& frame) {
    if (closed_) return;
    encode(frame, raw_out_);
    wake_.cancel();
  }

  asio::awaitable<void> write_loop(std::shared_ptr<Conn> self) {
    std::string out;
    while (!closed_) {
      if (pending_order_.empty() && raw_out_.empty()) {
        error_code ec;
        wake_.expires_at(std::chrono::steady_clock::time_point::max());
        co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      out.clear();
      out.swap(raw_out_);
      for (uint64_t id : pending_order_) {
        auto it = pending_.find(id);
        encode(OutputFrame{id, std::move(it->second)}, out);
        pending_.erase(it);
      }
      pending_order_.clear();
      stall_.expires_after(server_.options_.write_stall_timeout);
      stall_.async_wait([self](error_code ec) {
        if (!ec) {
          spdlog::warn("request plane: a client stopped reading; closing its connection");
          self->close();
        }
      });
      error_code ec;
      co_await asio::async_write(socket_, asio::buffer(out),
                                 asio::redirect_error(asio::use_awaitable, ec));
      stall_.cancel();
      if (ec || (rejecting_ && raw_out_.empty())) break;
    }
    close();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (server_.engine_) {
      for (const auto& [wire, engine_id] : open_) server_.engine_->cancel(engine_id);
    }
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    wake_.cancel();
    stall_.cancel();
    hello_timer_.cancel();
    pending_.clear();
    pending_order_.clear();
    raw_out_.clear();
    server_.connections_--;
  }

  Impl& server_;
  asio::any_io_executor strand_;
  tcp::socket socket_;
  asio::steady_timer wake_;         // the writer waits on it for outputs
  asio::steady_timer stall_;        // closes the connection when a write makes no progress
  asio::steady_timer hello_timer_;  // closes a connection that does not authenticate in time
  std::string peer_;                // "ip:port", for logs
  bool authenticated_ = false;      // a valid Hello arrived
  bool rejecting_ = false;          // a Close is queued; nothing more is read or served
  bool closed_ = false;
  std::unordered_map<uint64_t, uint64_t> open_;                 // wire id -> engine id
  std::unordered_map<uint64_t, engine::EngineOutput> pending_;  // coalesced, not yet written
  std::vector<uint64_t> pending_order_;
  std::string raw_out_;  // encoded KvData frames not yet written
};

asio::awaitable<void> WorkerServer::Impl::accept_loop() {
  while (!stopped_) {
    error_code ec;
    auto strand = asio::make_strand(io_.context());
    tcp::socket sock(strand);
    co_await acceptor_->async_accept(sock, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) break;
      continue;
    }
    connections_++;
    auto conn = std::make_shared<Conn>(*this, std::move(sock), strand);
    {
      std::lock_guard lock(conns_mu_);
      std::erase_if(conns_, [](const std::weak_ptr<Conn>& w) { return w.expired(); });
      conns_.push_back(conn);
    }
    conn->start();
  }
}

void WorkerServer::Impl::stop() {
  if (stopped_.exchange(true)) return;
  asio::post(io_.context(), [this] {
    error_code ec;
    if (acceptor_) acceptor_->close(ec);
  });
  std::vector<std::shared_ptr<Conn>> conns;
  {
    std::lock_guard lock(conns_mu_);
    for (auto& w : conns_) {
      if (auto c = w.lock()) conns.push_back(std::move(c));
    }
  }
  for (auto& c : conns) c->post_close();
  // Let the closes run and the engine end the cancelled requests (their callbacks post to this
  // loop), then stop the loop.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((connections_.load() > 0 || open_requests_.load() > 0) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  io_.stop();
}

WorkerServer::WorkerServer(WorkerServerOptions options, std::shared_ptr<engine::AsyncEngine> engine)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(engine))) {}
WorkerServer::~WorkerServer() {
  stop();
}
Status WorkerServer::start() {
  return impl_->start();
}
void WorkerServer::set_kv_source(std::shared_ptr<engine::KvTransferSource> source,
                                 std::string advertise_host) {
  impl_->kv_source_ = std::move(source);
  impl_->kv_host_ = std::move(advertise_host);
}
void WorkerServer::set_encoder(std::shared_ptr<encoder::AsyncEncoder> encoder) {
  impl_->encoder_ = std::move(encoder);
}
void WorkerServer::set_kv_address(std::string address) {
  impl_->kv_address_ = std::move(address);
}
uint16_t WorkerServer::port() const {
  return impl_->port_;
}
size_t WorkerServer::open_requests() const {
  return impl_->open_requests_.load();
}
size_t WorkerServer::connections() const {
  return impl_->connections_.load();
}
void WorkerServer::stop() {
  impl_->stop();
}

}  // namespace turbine::runtime
