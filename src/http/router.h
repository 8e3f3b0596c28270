// Request, ResponseWriter, Handler and Router: the surface handlers are written against.
//
// Threads: a handler coroutine runs on its connection's strand (an executor of the server's
// io_context); `co_await boost::asio::this_coro::executor` yields that strand, and work finished
// on another thread (the engine) must be posted to it before touching the ResponseWriter. All
// ResponseWriter members must be called on that strand. The Router is immutable once the Server
// is constructed and is read concurrently by all connections.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turbine::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;  // "GET", "POST", ... as sent
  std::string
      target;         // path only, e.g. "/v1/completions" (absolute-form targets are reduced to it)
  std::string query;  // after '?', without it; empty if none
  Headers headers;    // in arrival order
  std::string body;
  std::string remote;  // "ip:port" of the peer
  int version = 11;    // 10 or 11

  // First header with this name, compared case-insensitively; empty if absent.
  std::string_view header(std::string_view name) const;
};

// How a handler answers. Exactly one of: send(), or start_stream() + write_chunk()* +
// end_stream(). Every call returns false once the client is gone (write failed or the peer
// closed): the handler should then stop its work. If a handler returns without answering, the
// server answers 500; if it returns mid-stream, the server ends the stream.
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;

  // Unary response with Content-Length. `extra` headers are added as given.
  virtual boost::asio::awaitable<bool> send(int status, std::string content_type, std::string body,
                                            Headers extra = {}) = 0;

  // Starts a streamed response: chunked on HTTP/1.1 (close-delimited on HTTP/1.0), with
  // `Cache-Control: no-cache`. Use content type "text/event-stream" for SSE.
  virtual boost::asio::awaitable<bool> start_stream(int status, std::string content_type,
                                                    Headers extra = {}) = 0;
  // Writes one chunk; `data` must stay valid until the co_await returns. Empty data is a no-op.
  virtual boost::asio::awaitable<bool> write_chunk(std::string_view data) = 0;
  virtual boost::asio::awaitable<bool> end_stream() = 0;

  // True once the peer has closed or reset the connection, or a write failed. While the handler
  // runs the server keeps a read pending on the socket, so a peer that closes is noticed even
  // when nothing is being written (e.g. the request is still queued for the engine).
  virtual bool client_gone() const = 0;

  // Registers `callback` to run once, on the connection's strand, when the client goes away
  // while the handler runs; runs it immediately if already gone. Callbacks must not throw and
  // must not block (set a cancellation flag / post to the engine). Callbacks are dropped when
  // the handler returns.
  virtual void on_disconnect(std::function<void()> callback) = 0;
};

using Handler = std::function<boost::asio::awaitable<void>(const Request&, ResponseWriter&)>;

// Builds the body of errors the server produces itself (400, 404, 405, 413, 500).
using ErrorBodyFn = std::function<std::string(int status, std::string_view message)>;

// Default error body: {"error":{"message":"..."}}.
std::string default_error_body(int status, std::string_view message);

// Routing table of exact paths and path prefixes (exact paths win, then the longest prefix). Not
// thread-safe to modify; fill it before handing it to the Server. HEAD is served by a path's GET
// handler unless one is registered for HEAD (the server sends the GET response's headers without
// its body).
class Router {
 public:
  Router();

  // Registers `handler` for (method, path). A later add for the same pair replaces it.
  void add(std::string method, std::string path, Handler handler);
  // Registers `handler` for every path that starts with `prefix` and is longer (e.g.
  // "/v1/models/" for /v1/models/{id}, whatever ids exist later). Exact paths win; among
  // prefixes, the longest.
  void add_prefix(std::string method, std::string prefix, Handler handler);

  // Sets how the server renders its own errors (the frontend passes OpenAI-style JSON).
  void set_error_body(ErrorBodyFn fn, std::string content_type = "application/json");

  enum class Outcome { kFound, kNotFound, kMethodNotAllowed };
  struct Match {
    Outcome outcome = Outcome::kNotFound;
    const Handler* handler = nullptr;  // set when kFound; owned by the Router
    std::string allow;                 // "GET, POST" when kMethodNotAllowed
  };
  Match match(std::string_view method, std::string_view path) const;

  std::string error_body(int status, std::string_view message) const;
  const std::string& error_content_type() const { return error_content_type_; }

 private:
  Match match_routes(std::string_view method, std::string_view path, bool prefix) const;

  struct Route {
    std::string method;
    std::string path;
    Handler handler;
    bool prefix = false;
  };
  std::vector<Route> routes_;  // few routes: a linear scan beats hashing here
  ErrorBodyFn error_body_;
  std::string error_content_type_ = "application/json";
};

}  // namespace turbine::http
