// Asynchronous HTTP/1.1 server (Boost.Beast + C++20 coroutines).
//
// Threads: the Server owns one io_context run by `n_threads` threads it starts in start(). The
// acceptor and every connection run on their own strand of that io_context, so one connection's
// handler never runs concurrently with itself, while different connections run in parallel.
// start(), stop_accepting(), stop() and the destructor are called from the owning thread (not
// from a handler). executor() may be used from any thread to post work onto the io_context.
//
// Per connection: keep-alive (HTTP/1.1 default, HTTP/1.0 with `Connection: keep-alive`),
// `Connection: close` honoured, no pipelining (a pipelined request waits until the previous
// response is done). Errors produced by the server itself (400 malformed, 404, 405 with Allow,
// 413, 500 from a throwing handler) use the Router's error body. A connection idle for
// `idle_timeout` is closed; a write that makes no progress for `idle_timeout` (client not
// reading) fails and marks the client gone.
//
// A request is answered from its head when it can be: framing and Host errors (request_checks.h),
// CORS preflights, unknown routes and methods, a Content-Length over the limit and the
// `head_check` hook (credentials) are answered before the body is read and before
// `Expect: 100-continue` is. A request whose body was not read is then closed with a lingering
// close: the server stops sending and drops what the client still writes (bounded), so a client
// that writes its whole body before reading gets the answer rather than a reset. HEAD is served by
// GET routes without the body. Past `max_connections` open connections a new one is answered 503
// and closed; accept failures (out of descriptors) back off and are logged at most every 10 s.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "http/request_checks.h"
#include "http/router.h"

namespace turbine::http {

// Runs on a connection's strand for every routed request once its head is read, before the body
// is read: an answer means the handler is not called and the body is never read (the credential
// check). Called concurrently from many connections; must be quick and must not throw.
using HeadCheck = std::function<std::optional<EarlyAnswer>(const Request& head)>;

struct ServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8000;  // 0: ephemeral, see Server::port()
  int n_threads = 1;
  size_t max_body_bytes = 16 << 20;
  std::chrono::seconds idle_timeout{60};
  // Open connections at most; 0: the descriptor limit (RLIMIT_NOFILE) less 256, at least 64.
  size_t max_connections = 0;
  // Lingering close: bytes dropped at most (0: twice max_body_bytes) and for how long.
  size_t linger_bytes = 0;
  std::chrono::milliseconds linger_timeout{5000};
  CorsOptions cors;      // default: off
  HeadCheck head_check;  // may be empty

  Status validate() const;
};

class Server {
 public:
  Server(ServerOptions options, Router router);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens, then starts the threads. InvalidArgument for a bad host or options,
  // Unavailable if the address cannot be bound. Call once.
  Status start();

  // The bound port (the ephemeral one when options.port was 0); 0 before start().
  uint16_t port() const;

  // Closes the listening socket; open connections keep being served (graceful drain).
  void stop_accepting();

  // Closes every connection, stops the io_context and joins the threads. Handlers suspended at
  // that point are destroyed without resuming (their destructors run). Idempotent.
  void stop();

  // Executor of the server's io_context (not a strand): for posting work from other threads.
  boost::asio::any_io_executor executor();

  // Connections currently open (for draining and tests). Any thread.
  size_t active_connections() const;
  // The connection cap in force (options.max_connections, or the one derived from the limit).
  size_t max_connections() const;
  // Connections answered 503 because the cap was reached, since start. Any thread.
  uint64_t refused_connections() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace turbine::http
