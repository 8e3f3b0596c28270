// The server's answers to requests it must not serve as sent (issue 18): framing it cannot trust,
// missing Host, over-limit or unauthenticated bodies (answered before the body is read, with a
// lingering close), CORS, HEAD, absolute-form targets and the connection cap. Raw sockets: what
// goes on the wire is what is tested.
#include <sys/socket.h>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "http/request_checks.h"
#include "http/server.h"

namespace turbine::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// A blocking raw-socket peer.
class Peer {
 public:
  explicit Peer(uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  // Writes everything; false when the server reset or closed the connection meanwhile.
  bool write(std::string_view data) {
    boost::system::error_code ec;
    asio::write(socket_, asio::buffer(data), ec);
    return !ec;
  }
  // Reads until EOF (or `timeout` of silence); everything read.
  std::string read_all(std::chrono::milliseconds timeout = 3000ms) {
    set_timeout(timeout);
    std::string out;
    for (;;) {
      char buf[4096];
      const ssize_t n = recv_some(buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  // Reads until `needle` has arrived (or EOF / silence).
  std::string read_until(std::string_view needle, std::chrono::milliseconds timeout = 3000ms) {
    set_timeout(timeout);
    while (raw_.find(needle) == std::string::npos) {
      char buf[4096];
      const ssize_t n = recv_some(buf, sizeof buf);
      if (n <= 0) break;
      raw_.append(buf, static_cast<size_t>(n));
    }
    return raw_;
  }
  void clear() { raw_.clear(); }

 private:
  // recv(2) itself: Asio's blocking read polls again after SO_RCVTIMEO and never times out.
  ssize_t recv_some(char* buf, size_t n) { return ::recv(socket_.native_handle(), buf, n, 0); }
  void set_timeout(std::chrono::milliseconds t) {
    struct timeval tv {};
    tv.tv_sec = static_cast<time_t>(t.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  asio::io_context ioc_;
  tcp::socket socket_;
  std::string raw_;
};

int count(std::string_view hay, std::string_view needle) {
  int n = 0;
  for (size_t p = hay.find(needle); p != std::string_view::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

struct Fixture {
  std::atomic<int> handled{0};
  std::unique_ptr<Server> server;

  explicit Fixture(ServerOptions opts = {}) {
    Router router;
    router.add("GET", "/hello",
               [this](const Request& req, ResponseWriter& w) -> asio::awaitable<void> {
                 handled++;
                 co_await w.send(200, "text/plain", "hi " + req.query);
               });
    router.add("POST", "/echo",
               [this](const Request& req, ResponseWriter& w) -> asio::awaitable<void> {
                 handled++;
                 co_await w.send(200, "text/plain", req.body);
               });
    opts.host = "127.0.0.1";
    opts.port = 0;
    server = std::make_unique<Server>(opts, std::move(router));
    const Status st = server->start();
    EXPECT_TRUE(st.is_ok()) << st.to_string();
  }
  uint16_t port() const { return server->port(); }
};

// ---- framing (RFC 9112 6.3): no request smuggling --------------------------------------------

TEST(HttpHardeningTest, TransferEncodingNotEndingInChunkedIs400AndClosed) {
  Fixture f;
  for (const char* te : {"gzip", "chunked, gzip", "identity", "xchunked", "chunked, chunked"}) {
    SCOPED_TRACE(te);
    Peer p(f.port());
    // If the server took the first request as body-less, the second would be served ("hi").
    ASSERT_TRUE(p.write(std::string("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ") + te +
                        "\r\n\r\nGET /hello?smuggled HTTP/1.1\r\nHost: x\r\n\r\n"));
    const std::string got = p.read_all();
    EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
    EXPECT_EQ(count(got, "HTTP/1.1 "), 1) << got;
    EXPECT_EQ(got.find("smuggled"), std::string::npos) << got;
    EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
  }
  EXPECT_EQ(f.handled.load(), 0);
}

TEST(HttpHardeningTest, UnsupportedCodingBeforeChunkedIs501AndChunkedAloneWorks) {
  Fixture f;
  {
    Peer p(f.port());
    ASSERT_TRUE(
        p.write("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                "3\r\nabc\r\n0\r\n\r\n"));
    EXPECT_EQ(p.read_all().rfind("HTTP/1.1 501", 0), 0u);
  }
  Peer p(f.port());
  ASSERT_TRUE(p.write(
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"));
  const std::string got = p.read_until("abc");
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
  EXPECT_EQ(f.handled.load(), 1);
}

TEST(HttpHardeningTest, TransferEncodingInHttp10Is400) {
  Fixture f;
  Peer p(f.port());
  ASSERT_TRUE(p.write("POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
  EXPECT_EQ(p.read_all().rfind("HTTP/1.0 400", 0), 0u);
}

// ---- Host (RFC 9112 3.2) ---------------------------------------------------------------------

TEST(HttpHardeningTest, MissingOrDuplicateHostIs400) {
  Fixture f;
  {
    Peer p(f.port());
    ASSERT_TRUE(p.write("GET /hello HTTP/1.1\r\n\r\n"));
    const std::string got = p.read_until("\r\n\r\n");
    EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
    EXPECT_NE(got.find("Host"), std::string::npos);
  }
  {
    Peer p(f.port());
    ASSERT_TRUE(p.write("GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"));
    EXPECT_EQ(p.read_until("\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  }
  {
    Peer p(f.port());  // HTTP/1.0 needs none
    ASSERT_TRUE(p.write("GET /hello?ten HTTP/1.0\r\n\r\n"));
    const std::string got = p.read_all();
    EXPECT_EQ(got.rfind("HTTP/1.0 200", 0), 0u) << got;
    EXPECT_NE(got.find("hi ten"), std::string::npos);
  }
  EXPECT_EQ(f.handled.load(), 1);
}

// ---- targets and methods -----------------------------------------------------------------------

TEST(HttpHardeningTest, AbsoluteFormTargetIsServed) {
  Fixture f;
  Peer p(f.port());
  ASSERT_TRUE(p.write("GET http://localhost:1/hello?abs HTTP/1.1\r\nHost: localhost:1\r\n\r\n"));
  const std::string got = p.read_until("hi abs");
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
  EXPECT_NE(got.find("hi abs"), std::string::npos) << got;
}

TEST(HttpHardeningTest, HeadIsServedByGetRoutesWithoutBody) {
  Fixture f;
  Peer p(f.port());
  ASSERT_TRUE(p.write("HEAD /hello?q HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string got = p.read_until("\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
  EXPECT_NE(got.find("Content-Length: 4\r\n"), std::string::npos) << got;  // "hi q", not sent
  // The connection stays usable: the next response starts right after the HEAD's headers.
  p.clear();
  ASSERT_TRUE(p.write("GET /hello?q HTTP/1.1\r\nHost: x\r\n\r\n"));
  got = p.read_until("hi q");
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
  EXPECT_EQ(count(got, "HTTP/1.1 "), 1) << got;
  // A POST-only path answers HEAD with 405, its Allow lists no HEAD.
  p.clear();
  ASSERT_TRUE(p.write("HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
  got = p.read_until("\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 405", 0), 0u) << got;
  EXPECT_NE(got.find("Allow: POST\r\n"), std::string::npos) << got;
}

TEST(HttpHardeningTest, AllowListsHeadForGetRoutes) {
  Router router;
  router.add("GET", "/m",
             [](const Request&, ResponseWriter&) -> asio::awaitable<void> { co_return; });
  const Router::Match m = router.match("DELETE", "/m");
  EXPECT_EQ(m.outcome, Router::Outcome::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, HEAD");
  EXPECT_EQ(router.match("HEAD", "/m").outcome, Router::Outcome::kFound);
}

// ---- answers before the body, lingering close ------------------------------------------------

// A client that writes its whole body before reading (urllib, most SDKs) must read the early
// answer: without the lingering close its writes fail with a reset and it never sees the status.
TEST(HttpHardeningTest, OverLimitBodyGets413AfterTheClientWroteItAll) {
  ServerOptions o;
  o.max_body_bytes = 1 << 20;
  o.linger_bytes = 16 << 20;
  Fixture f(o);
  Peer p(f.port());
  const std::string body(8 << 20, 'x');
  ASSERT_TRUE(p.write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n"));
  EXPECT_TRUE(p.write(body)) << "the server reset the connection while the body was written";
  const std::string got = p.read_all();
  EXPECT_EQ(got.rfind("HTTP/1.1 413", 0), 0u) << got.substr(0, 200);
  EXPECT_EQ(f.handled.load(), 0);
}

TEST(HttpHardeningTest, HeadCheckAnswersBeforeTheBodyAndWithoutContinue) {
  ServerOptions o;
  std::atomic<int> checked{0};
  o.head_check = [&](const Request& head) -> std::optional<EarlyAnswer> {
    checked++;
    if (head.header("authorization") == "ok") return std::nullopt;
    EarlyAnswer a{401, "no key", {}, false};
    a.headers.emplace_back("WWW-Authenticate", "Bearer");
    return a;
  };
  Fixture f(o);
  {  // Expect: 100-continue gets the 401 instead of the go-ahead
    Peer p(f.port());
    ASSERT_TRUE(p.write(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
    const std::string got = p.read_until("no key");
    EXPECT_EQ(got.rfind("HTTP/1.1 401", 0), 0u) << got;
    EXPECT_EQ(got.find("100 Continue"), std::string::npos) << got;
    EXPECT_NE(got.find("WWW-Authenticate: Bearer"), std::string::npos) << got;
  }
  {  // a large body written before reading: the 401 is still read (lingering close)
    Peer p(f.port());
    const std::string body(8 << 20, 'x');
    ASSERT_TRUE(p.write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n"));
    EXPECT_TRUE(p.write(body));
    EXPECT_EQ(p.read_all().rfind("HTTP/1.1 401", 0), 0u);
  }
  {  // a bodiless request keeps its connection after the early answer
    Peer p(f.port());
    ASSERT_TRUE(p.write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(p.read_until("no key").rfind("HTTP/1.1 401", 0), 0u);
    p.clear();
    ASSERT_TRUE(p.write("GET /hello?in HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\n\r\n"));
    EXPECT_NE(p.read_until("hi in").find("hi in"), std::string::npos);
  }
  EXPECT_EQ(f.handled.load(), 1);
  EXPECT_EQ(checked.load(), 4);
}

TEST(HttpHardeningTest, UnknownRouteIsAnsweredBeforeTheBody) {
  Fixture f;
  Peer p(f.port());
  ASSERT_TRUE(p.write("POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"));
  // Nothing of the body was sent: the 404 comes anyway.
  EXPECT_EQ(p.read_until("\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
}

// ---- CORS ------------------------------------------------------------------------------------

TEST(HttpHardeningTest, CorsPreflightAndActualRequest) {
  ServerOptions o;
  o.cors.allowed_origins = {"https://app.example"};
  o.head_check = [](const Request& head) -> std::optional<EarlyAnswer> {
    if (head.header("authorization").empty()) return EarlyAnswer{401, "no key", {}, false};
    return std::nullopt;
  };
  Fixture f(o);
  {  // a preflight carries no credentials and is answered without reaching the head check
    Peer p(f.port());
    ASSERT_TRUE(
        p.write("OPTIONS /echo HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n"
                "Access-Control-Request-Method: POST\r\n"
                "Access-Control-Request-Headers: authorization, content-type\r\n\r\n"));
    const std::string got = p.read_until("\r\n\r\n");
    EXPECT_EQ(got.rfind("HTTP/1.1 204", 0), 0u) << got;
    EXPECT_EQ(count(got, "Access-Control-Allow-Origin: https://app.example\r\n"), 1) << got;
    EXPECT_NE(got.find("Access-Control-Allow-Methods: POST\r\n"), std::string::npos) << got;
    EXPECT_NE(got.find("Access-Control-Allow-Headers: authorization, content-type\r\n"),
              std::string::npos)
        << got;
    EXPECT_EQ(got.find("Content-Length"), std::string::npos) << got;
  }
  {
    Peer p(f.port());
    ASSERT_TRUE(
        p.write("OPTIONS /echo HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n"
                "Access-Control-Request-Method: POST\r\n\r\n"));
    const std::string got = p.read_until("\r\n\r\n");
    EXPECT_EQ(got.rfind("HTTP/1.1 403", 0), 0u) << got;
    EXPECT_EQ(got.find("Access-Control-Allow-Origin"), std::string::npos) << got;
  }
  {  // the actual request (and its 401) carries the origin so the page can read the answer
    Peer p(f.port());
    ASSERT_TRUE(p.write("GET /hello HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n\r\n"));
    const std::string got = p.read_until("no key");
    EXPECT_EQ(got.rfind("HTTP/1.1 401", 0), 0u) << got;
    EXPECT_NE(got.find("Access-Control-Allow-Origin: https://app.example\r\n"), std::string::npos);
    EXPECT_NE(got.find("Vary: Origin\r\n"), std::string::npos);
  }
}

TEST(HttpHardeningTest, CorsOffByDefault) {
  Fixture f;
  Peer p(f.port());
  ASSERT_TRUE(
      p.write("OPTIONS /echo HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n"
              "Access-Control-Request-Method: POST\r\n\r\n"));
  std::string got = p.read_until("\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 405", 0), 0u) << got;
  EXPECT_EQ(got.find("Access-Control"), std::string::npos) << got;
}

TEST(CorsTest, WildcardsAndCredentials) {
  CorsOptions o;
  o.allowed_origins = {"*"};
  Request pre;
  pre.method = "OPTIONS";
  pre.headers = {{"Origin", "https://a"}, {"Access-Control-Request-Method", "DELETE"}};
  EXPECT_TRUE(Cors(o).is_preflight(pre));
  EarlyAnswer a = Cors(o).preflight(pre);
  EXPECT_EQ(a.status, 204);
  EXPECT_EQ(a.headers.front().second, "*");
  o.allow_credentials = true;  // a wildcard cannot carry credentials: the origin is echoed
  EXPECT_EQ(Cors(o).preflight(pre).headers.front().second, "https://a");
  o.allowed_methods = {"GET", "POST"};
  EXPECT_EQ(Cors(o).preflight(pre).status, 403);
  o.allowed_methods = {"*"};
  o.allowed_headers = {"content-type"};
  pre.headers.emplace_back("Access-Control-Request-Headers", "Authorization");
  EXPECT_EQ(Cors(o).preflight(pre).status, 403);
}

// ---- connection cap --------------------------------------------------------------------------

TEST(HttpHardeningTest, ConnectionsPastTheCapGet503) {
  ServerOptions o;
  o.max_connections = 2;
  Fixture f(o);
  EXPECT_EQ(f.server->max_connections(), 2u);
  auto a = std::make_unique<Peer>(f.port());
  Peer b(f.port());
  for (int i = 0; i < 200 && f.server->active_connections() < 2; ++i)
    std::this_thread::sleep_for(5ms);
  ASSERT_EQ(f.server->active_connections(), 2u);
  {
    Peer c(f.port());
    ASSERT_TRUE(c.write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    const std::string got = c.read_all();
    EXPECT_EQ(got.rfind("HTTP/1.1 503", 0), 0u) << got;
    EXPECT_NE(got.find("Retry-After: 1"), std::string::npos) << got;
  }
  EXPECT_EQ(f.server->refused_connections(), 1u);
  a.reset();  // one slot frees up: the next connection is served
  for (int i = 0; i < 200 && f.server->active_connections() > 1; ++i)
    std::this_thread::sleep_for(5ms);
  Peer d(f.port());
  ASSERT_TRUE(d.write("GET /hello?again HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_NE(d.read_until("hi again").find("hi again"), std::string::npos);
}

// ---- pure checks -------------------------------------------------------------------------------

TEST(RequestChecksTest, OriginForm) {
  EXPECT_EQ(origin_form("/v1/models"), "/v1/models");
  EXPECT_EQ(origin_form("http://h:8000/v1/models?x=1"), "/v1/models?x=1");
  EXPECT_EQ(origin_form("HTTPS://h"), "/");
  EXPECT_EQ(origin_form("http://h?q"), "/");
  EXPECT_EQ(origin_form("*"), "*");
}

TEST(RequestChecksTest, HeadChecks) {
  Request r;
  r.version = 11;
  r.headers = {{"Host", "x"}};
  EXPECT_FALSE(check_head(r).has_value());
  r.headers.emplace_back("Transfer-Encoding", "chunked");
  EXPECT_FALSE(check_head(r).has_value());
  r.headers.emplace_back("transfer-encoding", "gzip");  // two fields: chunked is not last
  ASSERT_TRUE(check_head(r).has_value());
  EXPECT_EQ(check_head(r)->status, 400);
  EXPECT_TRUE(check_head(r)->close);
  r.headers = {{"Host", "x"}, {"Transfer-Encoding", "gzip"}, {"Transfer-Encoding", "chunked"}};
  EXPECT_EQ(check_head(r)->status, 501);
  r.headers = {{"Host", "x"}, {"Transfer-Encoding", ""}};  // present but empty
  EXPECT_EQ(check_head(r)->status, 400);
}

}  // namespace
}  // namespace turbine::http
