#include "http/server.h"

#include "common/strings.h"

// clang 14 with -fsanitize=function (part of UBSan) emits prologue data that its assembler cannot
// place for split coroutine functions ("Cannot represent a difference across sections"). That
// check is irrelevant here, so it is switched off for this file's functions, headers included.
#if defined(__clang__) && __clang_major__ < 15
#pragma clang attribute push(__attribute__((no_sanitize("function"))), apply_to = function)
#define TURBINE_POP_NO_SANITIZE_FUNCTION 1
#endif

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include <sys/resource.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "http/beast_request.h"

namespace turbine::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kWatchReadBytes = 4096;

bool is_http_parse_error(const beast::error_code& ec) {
  return &ec.category() == &bhttp::make_error_code(bhttp::error::bad_method).category() &&
         ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message;
}

unsigned clamp_status(int status) {
  return status >= 100 && status <= 999 ? static_cast<unsigned>(status) : 500u;
}

// At most one log line per interval for a condition that can repeat thousands of times a second
// (accept failures, refused connections): the first occurrence, then a count every interval.
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::seconds interval) : interval_(interval) {}
  // Counts one occurrence; returns how many to report now (0: stay quiet).
  uint64_t hit() {
    const auto now = std::chrono::steady_clock::now();
    ++pending_;
    if (reported_once_ && now - last_ < interval_) return 0;
    reported_once_ = true;
    last_ = now;
    return std::exchange(pending_, 0);
  }

 private:
  const std::chrono::seconds interval_;
  std::chrono::steady_clock::time_point last_{};
  bool reported_once_ = false;
  uint64_t pending_ = 0;
};

// The connection cap when none is configured: what the descriptor limit leaves, keeping room for
// model files, worker connections and the like.
size_t default_max_connections() {
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 65536;
  const auto n = static_cast<size_t>(rl.rlim_cur);
  return n > 256 + 64 ? n - 256 : 64;
}

// Runs `fn` on `ex` and waits (bounded) for it: used by the owning thread to touch objects that
// live on a strand. The bound keeps a wedged handler from hanging shutdown forever.
template <typename Executor, typename Fn>
void run_and_wait(const Executor& ex, Fn fn) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> fut = done->get_future();
  asio::post(ex, [fn = std::move(fn), done]() mutable {
    fn();
    done->set_value();
  });
  fut.wait_for(std::chrono::seconds(2));
}

}  // namespace

class Connection;

// Open connections, for stop() and active_connections(). Touched by connection strands (on
// creation and destruction) and by the owner thread; mu_ guards the map.
class ConnectionRegistry {
 public:
  void add(const std::shared_ptr<Connection>& c) {
    std::lock_guard lock(mu_);
    connections_.emplace(c.get(), c);
  }
  void remove(Connection* c) {
    std::lock_guard lock(mu_);
    connections_.erase(c);
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return connections_.size();
  }
  std::vector<std::shared_ptr<Connection>> live() const {
    std::vector<std::shared_ptr<Connection>> out;
    std::lock_guard lock(mu_);
    for (const auto& [ptr, weak] : connections_) {
      if (auto c = weak.lock()) out.push_back(std::move(c));
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_;
};

class Server::Impl {
 public:
  Impl(ServerOptions options, Router router)
      : options_(std::move(options)),
        router_(std::move(router)),
        cors_(options_.cors),
        max_connections_(options_.max_connections != 0 ? options_.max_connections
                                                       : default_max_connections()),
        accept_strand_(asio::make_strand(ioc_)),
        acceptor_(accept_strand_) {
    const std::string body = router_.error_body(503, "too many open connections; retry later");
    refuse_answer_ = "HTTP/1.1 503 Service Unavailable\r\nServer: turbine\r\nContent-Type: " +
                     router_.error_content_type() +
                     "\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  ~Impl() { stop(); }

  Status start();
  void stop_accepting();
  void stop();
  asio::awaitable<void> accept_loop();
  // Answers a connection over the cap with 503 and closes it (lingering briefly).
  void refuse(tcp::socket socket);

  // Immutable after construction; read by every connection. Declared before ioc_ so that they
  // outlive the handler frames the io_context destroys.
  const ServerOptions options_;
  const Router router_;
  const Cors cors_;
  const size_t max_connections_;
  std::string refuse_answer_;  // the canned 503, set by the constructor
  ConnectionRegistry registry_;
  std::atomic<uint64_t> refused_{0};
  std::atomic<int> refusing_{0};                     // 503 answers still being written
  LogLimiter accept_log_{std::chrono::seconds(10)};  // accept strand only
  LogLimiter refuse_log_{std::chrono::seconds(10)};  // accept strand only

  asio::io_context ioc_;
  asio::strand<asio::io_context::executor_type> accept_strand_;
  tcp::acceptor acceptor_;  // on accept_strand_ once threads run
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;  // owner thread only
  std::atomic<uint16_t> port_{0};
  bool started_ = false;  // owner thread only
  bool stopped_ = false;  // owner thread only
};

// One TCP connection. Lives on its own strand; every member is touched only there. Also the
// ResponseWriter handed to handlers (one request at a time, no pipelining).
class Connection final : public std::enable_shared_from_this<Connection>, public ResponseWriter {
 public:
  Connection(tcp::socket socket, const ServerOptions& options, const Router& router,
             const Cors& cors, ConnectionRegistry& registry)
      : stream_(std::move(socket)),
        options_(options),
        router_(router),
        cors_(cors),
        registry_(registry),
        watch_done_(stream_.get_executor()) {
    beast::error_code ec;
    const tcp::endpoint ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    stream_.socket().set_option(tcp::no_delay(true), ec);  // token streams are latency-bound
  }
  ~Connection() override { registry_.remove(this); }

  asio::any_io_executor executor() { return stream_.get_executor(); }

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    try {
      co_await serve();
    } catch (const std::exception& e) {
      spdlog::warn("http: connection {} dropped: {}", remote_, e.what());
    } catch (...) {
      spdlog::warn("http: connection {} dropped", remote_);
    }
    close();
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  // ResponseWriter -------------------------------------------------------------------------

  asio::awaitable<bool> send(int status, std::string content_type, std::string body,
                             Headers extra) override {
    if (state_ != State::kIdle || gone_) co_return false;
    state_ = State::kSent;
    bhttp::response<bhttp::string_body> res;
    res.version(version_);
    res.result(clamp_status(status));
    res.set(bhttp::field::server, "turbine");
    // 204 and 304 carry neither a body nor its length (RFC 9110 8.6).
    const bool bodiless = status == 204 || status == 304;
    if (!bodiless) res.set(bhttp::field::content_type, content_type);
    for (const auto& [name, value] : extra_) res.insert(name, value);
    for (const auto& [name, value] : extra) res.insert(name, value);
    res.keep_alive(keep_alive_);
    if (!bodiless) {
      res.body() = std::move(body);
      res.prepare_payload();
    }
    stream_.expires_after(options_.idle_timeout);
    beast::error_code ec;
    if (head_) {  // HEAD: the GET response's headers (Content-Length included), no body
      bhttp::response_serializer<bhttp::string_body> sr{res};
      std::tie(ec, std::ignore) = co_await bhttp::async_write_header(stream_, sr, kUseTuple);
    } else {
      std::tie(ec, std::ignore) = co_await bhttp::async_write(stream_, res, kUseTuple);
    }
    if (ec) {
      mark_gone();
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<bool> start_stream(int status, std::string content_type, Headers extra) override {
    if (state_ != State::kIdle || gone_) co_return false;
    state_ = State::kStreaming;
    bhttp::response<bhttp::empty_body> res;
    res.version(version_);
    res.result(clamp_status(status));
    res.set(bhttp::field::server, "turbine");
    res.set(bhttp::field::content_type, content_type);
    res.set(bhttp::field::cache_control, "no-cache");
    for (const auto& [name, value] : extra_) res.insert(name, value);
    for (const auto& [name, value] : extra) res.insert(name, value);
    // HTTP/1.0 has no chunked encoding: the body ends when the connection closes.
    chunked_ = version_ >= 11;
    if (!chunked_) keep_alive_ = false;
    res.keep_alive(keep_alive_);
    res.chunked(chunked_);
    bhttp::response_serializer<bhttp::empty_body> sr{res};
    stream_.expires_after(options_.idle_timeout);
    auto [ec, n] = co_await bhttp::async_write_header(stream_, sr, kUseTuple);
    if (ec) {
      mark_gone();
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<bool> write_chunk(std::string_view data) override {
    if (state_ != State::kStreaming || gone_) co_return false;
    if (data.empty() || head_) co_return true;  // an empty chunk would end the chunked body
    const asio::const_buffer buf(data.data(), data.size());
    stream_.expires_after(options_.idle_timeout);
    beast::error_code ec;
    if (chunked_) {
      std::tie(ec, std::ignore) =
          co_await asio::async_write(stream_, bhttp::make_chunk(buf), kUseTuple);
    } else {
      std::tie(ec, std::ignore) = co_await asio::async_write(stream_, buf, kUseTuple);
    }
    if (ec) {
      mark_gone();
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<bool> end_stream() override {
    if (state_ != State::kStreaming) co_return false;
    state_ = State::kEnded;
    if (gone_) co_return false;
    if (!chunked_ || head_) co_return true;  // HTTP/1.0: run() closes, which ends the body
    stream_.expires_after(options_.idle_timeout);
    auto [ec, n] = co_await asio::async_write(stream_, bhttp::make_chunk_last(), kUseTuple);
    if (ec) {
      mark_gone();
      co_return false;
    }
    co_return true;
  }

  bool client_gone() const override { return gone_; }

  void on_disconnect(std::function<void()> callback) override {
    if (!callback) return;
    if (gone_) {
      callback();
      return;
    }
    on_disconnect_.push_back(std::move(callback));
  }

 private:
  enum class State { kIdle, kSent, kStreaming, kEnded };

  asio::awaitable<void> serve() {
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(kMaxHeaderBytes);
      parser.body_limit(options_.max_body_bytes);
      version_ = 11;
      keep_alive_ = false;
      state_ = State::kIdle;
      chunked_ = false;
      head_ = false;
      extra_.clear();

      stream_.expires_after(options_.idle_timeout);
      auto [ec, n] = co_await bhttp::async_read_header(stream_, buffer_, parser, kUseTuple);
      if (ec) {
        co_await reject(ec);
        co_return;
      }
      version_ = parser.get().version() == 10 ? 10 : 11;
      keep_alive_ = parser.get().keep_alive();
      const Request head = head_of(parser.get(), remote_);
      head_ = head.method == "HEAD";
      extra_ = cors_.response_headers(head);

      // Everything that can be answered from the head is answered before the body is read.
      const Router::Match match = router_.match(head.method, head.target);
      std::optional<EarlyAnswer> early = check_head(head);
      if (!early && cors_.is_preflight(head)) {
        early = cors_.preflight(head);
        extra_.clear();  // the preflight answer carries its own Access-Control-* headers
      }
      if (!early) early = route_error(head, match);
      if (!early && options_.head_check) early = options_.head_check(head);
      if (early) {
        const bool unread_body = !parser.is_done();
        if (early->close || unread_body) keep_alive_ = false;
        if (early->status == 204) {
          co_await send(204, {}, {}, std::move(early->headers));
        } else {
          co_await send_error(early->status, std::move(early->message), std::move(early->headers));
        }
        if (early->close || unread_body) {
          co_await linger();
          co_return;
        }
        if (!keep_alive_ || gone_) co_return;
        continue;
      }

      if (iequals(parser.get()[bhttp::field::expect], "100-continue") && version_ == 11) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [wec, wn] = co_await asio::async_write(
            stream_, asio::const_buffer(kContinue.data(), kContinue.size()), kUseTuple);
        if (wec) co_return;
      }
      if (!parser.is_done()) {
        std::tie(ec, n) = co_await bhttp::async_read(stream_, buffer_, parser, kUseTuple);
        if (ec) {
          co_await reject(ec);
          co_return;
        }
      }
      keep_alive_ = parser.get().keep_alive();
      stream_.expires_never();
      const Request req = to_request(parser.release(), remote_);
      co_await dispatch(req, match);
      if (!keep_alive_ || gone_) co_return;
    }
  }

  std::optional<EarlyAnswer> route_error(const Request& head, const Router::Match& match) const {
    if (match.outcome == Router::Outcome::kNotFound) {
      return EarlyAnswer{404, "no route for " + head.target, {}, false};
    }
    if (match.outcome == Router::Outcome::kMethodNotAllowed) {
      EarlyAnswer a{405, "method " + head.method + " is not allowed for " + head.target, {}, false};
      a.headers.emplace_back("Allow", match.allow);
      return a;
    }
    return std::nullopt;
  }

  // Answers a request that could not be read, where an answer makes sense, then closes with a
  // lingering close (the parser state is unusable, and the client may still be writing).
  asio::awaitable<void> reject(const beast::error_code& ec) {
    keep_alive_ = false;
    bool answered = true;
    if (ec == bhttp::error::body_limit) {
      co_await send_error(
          413, "request body exceeds " + std::to_string(options_.max_body_bytes) + " bytes");
    } else if (ec == bhttp::error::header_limit) {
      co_await send_error(431, "request header fields too large");
    } else if (is_http_parse_error(ec)) {
      co_await send_error(400, "malformed HTTP request: " + ec.message());
    } else {
      answered = false;  // EOF, timeout or reset: nobody to answer
    }
    if (answered) co_await linger();
  }

  // The lingering close (RFC 9112 9.6): after an answer given before the request's body was read,
  // stop sending (FIN after the answer) and read and drop what the client still writes, up to a
  // byte and a time cap, before closing. Closing at once would reset the connection while the
  // client is still writing, and most clients then report the reset instead of the answer.
  asio::awaitable<void> linger() {
    if (gone_) co_return;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) co_return;
    const size_t cap =
        options_.linger_bytes != 0 ? options_.linger_bytes : 2 * options_.max_body_bytes;
    size_t dropped = buffer_.size();
    buffer_.consume(buffer_.size());
    char scratch[16384];
    stream_.expires_after(options_.linger_timeout);
    while (dropped < cap) {
      auto [rec, n] = co_await stream_.async_read_some(asio::buffer(scratch), kUseTuple);
      if (rec) break;  // EOF (the client read the answer and closed), reset, or the time cap
      dropped += n;
    }
  }

  asio::awaitable<bool> send_error(int status, std::string message, Headers extra = {}) {
    std::string body = router_.error_body(status, message);
    co_return co_await send(status, router_.error_content_type(), std::move(body),
                            std::move(extra));
  }

  asio::awaitable<void> dispatch(const Request& req, const Router::Match& match) {
    start_watch();
    std::string failure;
    try {
      co_await (*match.handler)(req, *this);
    } catch (const std::exception& e) {
      failure = e.what();
      if (failure.empty()) failure = "exception";
    } catch (...) {
      failure = "unknown exception";
    }
    co_await stop_watch();
    on_disconnect_.clear();

    if (!failure.empty()) {
      spdlog::warn("http: handler for {} {} threw: {}", req.method, req.target, failure);
    }
    if (gone_) co_return;
    if (state_ == State::kIdle) {
      co_await send_error(
          500, failure.empty() ? "handler produced no response" : "internal server error");
    } else if (state_ == State::kStreaming) {
      // A stream cut short by an exception is closed without its terminator so the client sees
      // a truncated response rather than a clean end.
      if (!failure.empty()) {
        keep_alive_ = false;
      } else {
        co_await end_stream();
      }
    }
  }

  // Keeps a read pending while the handler runs so a peer that closes is noticed even when the
  // handler is not writing. Bytes that arrive instead (a pipelined request) are kept in buffer_
  // for the next parse; after that the peer is no longer watched for this request.
  void start_watch() {
    watching_ = true;
    stop_watch_ = false;
    watch_done_.expires_at(asio::steady_timer::time_point::max());
    asio::co_spawn(stream_.get_executor(), watch_peer(shared_from_this()), asio::detached);
  }

  asio::awaitable<void> watch_peer(std::shared_ptr<Connection> self) {
    if (!stop_watch_) {
      auto [ec, n] =
          co_await stream_.socket().async_read_some(buffer_.prepare(kWatchReadBytes), kUseTuple);
      if (!ec) {
        buffer_.commit(n);
      } else if (!stop_watch_) {
        mark_gone();
      }
    }
    watching_ = false;
    watch_done_.cancel();
  }

  asio::awaitable<void> stop_watch() {
    if (!watching_) co_return;
    stop_watch_ = true;
    beast::error_code ec;
    stream_.socket().cancel(ec);  // no write is pending: the handler has returned
    if (watching_) co_await watch_done_.async_wait(kUseTuple);
  }

  void mark_gone() {
    if (gone_) return;
    gone_ = true;
    keep_alive_ = false;
    std::vector<std::function<void()>> callbacks = std::move(on_disconnect_);
    on_disconnect_.clear();
    for (auto& cb : callbacks) {
      try {
        cb();
      } catch (...) {
        spdlog::warn("http: on_disconnect callback threw");
      }
    }
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  const ServerOptions& options_;  // owned by Server::Impl, outlives every connection
  const Router& router_;
  const Cors& cors_;
  ConnectionRegistry& registry_;
  std::string remote_;

  // Per-request state, reset by serve() before each request.
  int version_ = 11;
  bool keep_alive_ = false;
  State state_ = State::kIdle;
  bool chunked_ = false;
  bool head_ = false;  // a HEAD request: headers only
  Headers extra_;      // added to every response of the request (CORS)
  bool gone_ = false;  // sticky for the connection's life
  std::vector<std::function<void()>> on_disconnect_;

  bool watching_ = false;
  bool stop_watch_ = false;
  asio::steady_timer watch_done_;  // cancelled when watch_peer finishes
};

// --- Server::Impl --------------------------------------------------------------------------

Status ServerOptions::validate() const {
  if (n_threads < 1 || n_threads > 1024) {
    return invalid_argument("n_threads must be in [1, 1024]", "n_threads");
  }
  if (max_body_bytes == 0) return invalid_argument("max_body_bytes must be > 0", "max_body_bytes");
  if (idle_timeout.count() <= 0) {
    return invalid_argument("idle_timeout must be > 0", "idle_timeout");
  }
  if (linger_timeout.count() < 0) {
    return invalid_argument("linger_timeout must be >= 0", "linger_timeout");
  }
  return Status::ok();
}

Status Server::Impl::start() {
  if (started_) return Status(StatusCode::kInternal, "server already started");
  TURBINE_RETURN_IF_ERROR(options_.validate());
  beast::error_code ec;
  const asio::ip::address addr = asio::ip::make_address(options_.host, ec);
  if (ec) return invalid_argument("invalid host address '" + options_.host + "'", "host");
  const tcp::endpoint endpoint(addr, options_.port);
  const auto fail = [&](const char* what) {
    return Status(StatusCode::kUnavailable, std::string(what) + " " + options_.host + ":" +
                                                std::to_string(options_.port) + ": " +
                                                ec.message());
  };
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return fail("cannot open");
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  acceptor_.bind(endpoint, ec);
  if (ec) return fail("cannot bind");
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("cannot listen on");
  port_ = acceptor_.local_endpoint(ec).port();

  started_ = true;
  asio::co_spawn(accept_strand_, accept_loop(), asio::detached);
  work_.emplace(ioc_.get_executor());
  threads_.reserve(static_cast<size_t>(options_.n_threads));
  for (int i = 0; i < options_.n_threads; ++i) {
    threads_.emplace_back([this] {
      for (;;) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http: event loop caught: {}", e.what());
        } catch (...) {
          spdlog::error("http: event loop caught an unknown exception");
        }
      }
    });
  }
  return Status::ok();
}

asio::awaitable<void> Server::Impl::accept_loop() {
  auto backoff = std::chrono::milliseconds(10);
  for (;;) {
    auto [ec, socket] =
        co_await acceptor_.async_accept(asio::any_io_executor(asio::make_strand(ioc_)), kUseTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      // Out of descriptors and the like: back off (doubling up to 1 s) instead of spinning, and
      // say so once per interval rather than once per attempt.
      if (const uint64_t n = accept_log_.hit(); n > 0) {
        spdlog::warn("http: accept failed {} times: {} (open connections {}, cap {})", n,
                     ec.message(), registry_.size(), max_connections_);
      }
      asio::steady_timer timer(accept_strand_, backoff);
      co_await timer.async_wait(kUseTuple);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
      continue;
    }
    backoff = std::chrono::milliseconds(10);
    if (registry_.size() >= max_connections_) {
      refuse(std::move(socket));
      continue;
    }
    auto conn =
        std::make_shared<Connection>(std::move(socket), options_, router_, cors_, registry_);
    registry_.add(conn);
    asio::co_spawn(conn->executor(), conn->run(), asio::detached);
  }
}

void Server::Impl::refuse(tcp::socket socket) {
  refused_++;
  if (const uint64_t n = refuse_log_.hit(); n > 0) {
    spdlog::warn("http: refused {} connections with 503: {} open, the cap is {}", n,
                 registry_.size(), max_connections_);
  }
  // Refusals hold descriptors too: past a few in flight, close at once.
  if (refusing_.load() >= 64) {
    beast::error_code ec;
    socket.close(ec);
    return;
  }
  refusing_++;
  auto sock = std::make_shared<beast::tcp_stream>(std::move(socket));
  auto ex = sock->get_executor();
  asio::co_spawn(
      ex,
      [sock, this]() -> asio::awaitable<void> {
        sock->expires_after(std::chrono::seconds(1));
        auto [ec, n] = co_await asio::async_write(*sock, asio::buffer(refuse_answer_), kUseTuple);
        if (!ec) {
          // A short lingering close: the client's request is read and dropped.
          sock->socket().shutdown(tcp::socket::shutdown_send, ec);
          char scratch[4096];
          size_t dropped = 0;
          while (!ec && dropped < (64u << 10)) {
            std::tie(ec, n) = co_await sock->async_read_some(asio::buffer(scratch), kUseTuple);
            dropped += n;
          }
        }
        sock->close();
        refusing_--;
      },
      asio::detached);
}

void Server::Impl::stop_accepting() {
  if (!started_ || stopped_) {
    beast::error_code ec;
    acceptor_.close(ec);
    return;
  }
  run_and_wait(accept_strand_, [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
}

void Server::Impl::stop() {
  if (stopped_) return;
  stop_accepting();
  stopped_ = true;
  if (!started_) return;
  for (auto& c : registry_.live()) {
    auto ex = c->executor();
    run_and_wait(ex, [c = std::move(c)] { c->close(); });
  }
  work_.reset();
  ioc_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

// --- Server --------------------------------------------------------------------------------

Server::Server(ServerOptions options, Router router)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(router))) {}
Server::~Server() = default;
Status Server::start() {
  return impl_->start();
}
uint16_t Server::port() const {
  return impl_->port_.load();
}
void Server::stop_accepting() {
  impl_->stop_accepting();
}
void Server::stop() {
  impl_->stop();
}
asio::any_io_executor Server::executor() {
  return impl_->ioc_.get_executor();
}
size_t Server::active_connections() const {
  return impl_->registry_.size();
}
size_t Server::max_connections() const {
  return impl_->max_connections_;
}
uint64_t Server::refused_connections() const {
  return impl_->refused_.load();
}

}  // namespace turbine::http

#ifdef TURBINE_POP_NO_SANITIZE_FUNCTION
#pragma clang attribute pop
#endif
