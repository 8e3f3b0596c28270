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
// response is done). `Expect: 100-continue` is answered. Errors produced by the server itself
// (400 malformed, 404, 405 with Allow, 413, 500 from a throwing handler) use the Router's error
// body. A connection idle for `idle_timeout` is closed; a write that makes no progress for
// `idle_timeout` (client not reading) fails and marks the client gone.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "http/router.h"

namespace turbine::http {

struct ServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8000;  // 0: ephemeral, see Server::port()
  int n_threads = 1;
  size_t max_body_bytes = 16 << 20;
  std::chrono::seconds idle_timeout{60};

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

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace turbine::http
