// W3C traceparent parsing, span parentage and sampling, the OTLP/JSON body, and the exporter
// posting to a local receiver.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <thread>

#include "common/trace.h"
#include "trace/otlp_exporter.h"

namespace turbine::trace {
namespace {

namespace json = boost::json;

constexpr std::string_view kExample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceparentTest, ParsesAndFormatsTheSpecExample) {
  auto c = parse_traceparent(kExample);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(to_hex(c->trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(to_hex(c->span_id), "00f067aa0ba902b7");
  EXPECT_TRUE(c->sampled());
  EXPECT_EQ(format_traceparent(*c), kExample);
  auto unsampled = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(unsampled.has_value());
  EXPECT_FALSE(unsampled->sampled());
}

TEST(TraceparentTest, RejectsMalformedHeaders) {
  for (std::string_view bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",        // no flags
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",     // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",     // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",     // zero span id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     // forbidden version
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx",  // v00 with extra fields
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     // separator
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",     // not hex
       }) {
    EXPECT_FALSE(parse_traceparent(bad).has_value()) << bad;
  }
  // A future version may append fields after a dash; its first four are still understood.
  auto future = parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-abc");
  ASSERT_TRUE(future.has_value());
  EXPECT_EQ(to_hex(future->span_id), "00f067aa0ba902b7");
}

struct Collect final : SpanExporter {
  std::mutex mu;
  std::vector<SpanData> spans;
  void export_span(SpanData&& s) override {
    std::lock_guard lock(mu);
    spans.push_back(std::move(s));
  }
};

TEST(TracerTest, ChildrenShareTheTraceAndPointAtTheirParent) {
  auto sink = std::make_shared<Collect>();
  Tracer tracer(sink);
  const TraceContext client = *parse_traceparent(kExample);
  Span server = tracer.start_span("POST /v1/completions", SpanKind::kServer, client);
  ASSERT_TRUE(server.recording());
  EXPECT_EQ(server.context().trace_id, client.trace_id);
  EXPECT_NE(server.context().span_id, client.span_id);
  Span route = tracer.start_span("route", SpanKind::kInternal, server.context());
  route.set_attribute("turbine.worker.instance_id", std::string("1a2b"));
  route.set_attribute("turbine.router.overlap_blocks", int64_t{3});
  const TraceContext route_ctx = route.context();
  route.end();
  route.end();  // idempotent
  server.set_error("boom");
  server = Span();  // move-assignment ends the old span
  ASSERT_EQ(sink->spans.size(), 2u);
  const SpanData& r = sink->spans[0];
  const SpanData& s = sink->spans[1];
  EXPECT_EQ(r.name, "route");
  EXPECT_EQ(r.parent_span_id, s.context.span_id);
  EXPECT_EQ(r.context, route_ctx);
  EXPECT_EQ(s.parent_span_id, client.span_id);
  EXPECT_TRUE(s.error);
  EXPECT_EQ(s.status_message, "boom");
  EXPECT_LE(s.start_unix_ns, r.start_unix_ns);
  EXPECT_LE(r.end_unix_ns, s.end_unix_ns);
  ASSERT_EQ(r.attributes.size(), 2u);
  EXPECT_EQ(std::get<int64_t>(r.attributes[1].value), 3);
}

TEST(TracerTest, NoParentStartsASampledRootAndUnsampledParentsRecordNothing) {
  auto sink = std::make_shared<Collect>();
  Tracer tracer(sink);
  {
    Span root = tracer.start_span("root", SpanKind::kServer, TraceContext{});
    EXPECT_TRUE(root.context().valid());
    EXPECT_TRUE(root.context().sampled());
    Span a = tracer.start_span("a", SpanKind::kInternal, TraceContext{});
    EXPECT_NE(a.context().trace_id, root.context().trace_id);
  }
  EXPECT_EQ(sink->spans.size(), 2u);
  for (const SpanData& s : sink->spans) {
    EXPECT_EQ(s.parent_span_id, SpanId{});
  }
  const TraceContext unsampled =
      *parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  {
    Span s = tracer.start_span("x", SpanKind::kServer, unsampled);
    EXPECT_FALSE(s.recording());
    EXPECT_EQ(s.context(), unsampled);  // propagated unchanged
  }
  EXPECT_EQ(sink->spans.size(), 2u);
}

TEST(TracerTest, WithoutAnExporterTheCallersContextPassesThrough) {
  Tracer tracer;
  EXPECT_FALSE(tracer.enabled());
  const TraceContext client = *parse_traceparent(kExample);
  Span s = tracer.start_span("x", SpanKind::kServer, client);
  EXPECT_FALSE(s.recording());
  EXPECT_EQ(s.context(), client);
  Span none = tracer.start_span("y", SpanKind::kServer, TraceContext{});
  EXPECT_FALSE(none.context().valid());
}

TEST(OtlpTest, JsonBodyHasTheExportTraceServiceRequestShape) {
  SpanData s;
  s.name = "generate";
  s.kind = SpanKind::kServer;
  s.context = *parse_traceparent(kExample);
  s.parent_span_id = {1, 2, 3, 4, 5, 6, 7, 8};
  s.start_unix_ns = 1700000000000000001ull;
  s.end_unix_ns = 1700000000000000002ull;
  s.attributes = {{"gen_ai.usage.output_tokens", int64_t{7}},
                  {"model", std::string("m")},
                  {"ok", true},
                  {"ratio", 0.5}};
  OtlpOptions o;
  o.service_name = "turbine-worker";
  json::value v = json::parse(otlp_json(o, {s}));
  const json::object& rs = v.at("resourceSpans").as_array().at(0).as_object();
  EXPECT_EQ(rs.at("resource").at("attributes").at(0).at("key"), "service.name");
  EXPECT_EQ(rs.at("resource").at("attributes").at(0).at("value").at("stringValue"),
            "turbine-worker");
  const json::object& span = rs.at("scopeSpans").at(0).at("spans").at(0).as_object();
  EXPECT_EQ(span.at("traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(span.at("spanId"), "00f067aa0ba902b7");
  EXPECT_EQ(span.at("parentSpanId"), "0102030405060708");
  EXPECT_EQ(span.at("kind"), 2);
  EXPECT_EQ(span.at("startTimeUnixNano"), "1700000000000000001");
  EXPECT_EQ(span.at("attributes").at(0).at("value").at("intValue"), "7");
  EXPECT_EQ(span.at("attributes").at(2).at("value").at("boolValue"), true);
  EXPECT_EQ(span.at("attributes").at(3).at("value").at("doubleValue"), 0.5);
  // A root span has no parentSpanId.
  s.parent_span_id = {};
  json::value root = json::parse(otlp_json(o, {s}));
  EXPECT_FALSE(root.at("resourceSpans")
                   .at(0)
                   .at("scopeSpans")
                   .at(0)
                   .at("spans")
                   .at(0)
                   .as_object()
                   .contains("parentSpanId"));
}

// Accepts HTTP/1.1 POSTs on a loopback port and keeps their bodies.
class Receiver {
 public:
  Receiver() : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { serve(); });
  }
  ~Receiver() {
    // A blocked accept() does not return when its socket is closed from another thread: wake it
    // with one last connection, which serve() sees after `stopping_` is set.
    stopping_ = true;
    boost::system::error_code ec;
    boost::asio::ip::tcp::socket wake(ioc_);
    wake.connect({boost::asio::ip::make_address("127.0.0.1"), port()}, ec);
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }

 private:
  void serve() {
    for (;;) {
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket sock(ioc_);
      acceptor_.accept(sock, ec);
      if (ec || stopping_) return;
      for (;;) {  // keep-alive: curl may reuse nothing, but read requests until EOF
        boost::asio::streambuf buf;
        size_t n = boost::asio::read_until(sock, buf, "\r\n\r\n", ec);
        if (ec) break;
        std::string head(boost::asio::buffers_begin(buf.data()),
                         boost::asio::buffers_begin(buf.data()) + static_cast<long>(n));
        buf.consume(n);
        size_t length = 0;
        auto pos = head.find("Content-Length: ");
        if (pos != std::string::npos) length = std::stoul(head.substr(pos + 16));
        if (buf.size() < length)
          boost::asio::read(sock, buf, boost::asio::transfer_exactly(length - buf.size()), ec);
        std::string body(boost::asio::buffers_begin(buf.data()),
                         boost::asio::buffers_begin(buf.data()) + static_cast<long>(length));
        {
          std::lock_guard lock(mu_);
          bodies_.push_back(body);
        }
        const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        boost::asio::write(sock, boost::asio::buffer(reply), ec);
        if (ec) break;
      }
    }
  }
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> bodies_;
};

TEST(OtlpTest, ExporterPostsBatchesAndFlushes) {
  Receiver receiver;
  OtlpOptions o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(receiver.port()) + "/v1/traces";
  o.service_name = "turbine-test";
  o.flush_interval = std::chrono::milliseconds(50);
  auto exporter = std::make_shared<OtlpHttpExporter>(o);
  Tracer tracer(exporter);
  for (int i = 0; i < 5; ++i) {
    Span s = tracer.start_span("span" + std::to_string(i), SpanKind::kInternal, TraceContext{});
  }
  exporter->flush();
  EXPECT_EQ(exporter->exported(), 5u);
  EXPECT_EQ(exporter->dropped(), 0u);
  size_t spans = 0;
  for (const std::string& b : receiver.bodies()) {
    json::value v = json::parse(b);
    spans += v.at("resourceSpans").at(0).at("scopeSpans").at(0).at("spans").as_array().size();
  }
  EXPECT_EQ(spans, 5u);
}

TEST(OtlpTest, ACollectorThatIsDownCostsDroppedSpansNotABlockedCaller) {
  uint16_t port = 0;
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  OtlpOptions o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(port) + "/v1/traces";
  o.max_queue = 3;
  auto exporter = std::make_shared<OtlpHttpExporter>(o);
  Tracer tracer(exporter);
  for (int i = 0; i < 10; ++i) {
    Span s = tracer.start_span("s", SpanKind::kInternal, TraceContext{});
  }
  exporter->flush();
  EXPECT_EQ(exporter->exported(), 0u);
  EXPECT_EQ(exporter->dropped(), 10u);  // 7 over the queue bound, 3 failed to send
  EXPECT_GE(exporter->failed_posts(), 1u);
}

TEST(OtlpTest, EndpointFromFlagOrStandardVariables) {
  EXPECT_EQ(traces_endpoint("http://x:4318/v1/traces"), "http://x:4318/v1/traces");
  setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/", 1);
  unsetenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  EXPECT_EQ(traces_endpoint(""), "http://c:4318/v1/traces");
  setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/traces", 1);
  EXPECT_EQ(traces_endpoint(""), "http://t:1/traces");
  unsetenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
  EXPECT_EQ(traces_endpoint(""), "");
}

}  // namespace
}  // namespace turbine::trace
