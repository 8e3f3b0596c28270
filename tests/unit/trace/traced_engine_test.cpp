// TracedEngine: one server span per request, under the request's context, ended by the final
// output (or a refused submit), with the counts; the wrapped engine sees the span's context.
#include <gtest/gtest.h>

#include <mutex>

#include "engine/traced_engine.h"

namespace turbine::engine {
namespace {

struct Collect final : trace::SpanExporter {
  std::mutex mu;
  std::vector<trace::SpanData> spans;
  void export_span(trace::SpanData&& s) override {
    std::lock_guard lock(mu);
    spans.push_back(std::move(s));
  }
};

// Keeps submitted requests; the test finishes them by hand.
struct Recorder final : AsyncEngine {
  std::vector<EngineRequest> requests;
  bool refuse = false;
  Status submit(EngineRequest r) override {
    if (refuse) return {StatusCode::kResourceExhausted, "queue full"};
    requests.push_back(std::move(r));
    return Status::ok();
  }
  void cancel(uint64_t) override {}
  void shutdown() override {}
  EngineStats stats() const override { return {}; }
  int max_context() const override { return 64; }
  int num_slots() const override { return 4; }
  int block_size() const override { return 16; }
};

TEST(TracedEngineTest, OneSpanPerRequestUnderTheCallersContext) {
  auto sink = std::make_shared<Collect>();
  auto inner = std::make_shared<Recorder>();
  TracedEngine engine(inner, std::make_shared<trace::Tracer>(sink), "generate",
                      {{"turbine.worker.instance_id", std::string("abc")}});
  const trace::TraceContext caller =
      *trace::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  std::vector<EngineOutput> seen;
  EngineRequest r;
  r.id = 7;
  r.prompt = {1, 2, 3};
  r.params.max_tokens = 2;
  r.trace = caller;
  r.on_output = [&](EngineOutput&& o) { seen.push_back(std::move(o)); };
  ASSERT_TRUE(engine.submit(std::move(r)).is_ok());
  ASSERT_EQ(inner->requests.size(), 1u);
  EngineRequest& got = inner->requests[0];
  EXPECT_EQ(got.trace.trace_id, caller.trace_id);
  EXPECT_NE(got.trace.span_id, caller.span_id);

  EngineOutput first;
  first.tokens = {{5, 0.f, {}}};
  got.on_output(std::move(first));
  EXPECT_TRUE(sink->spans.empty());  // still running
  EngineOutput last;
  last.tokens = {{6, 0.f, {}}};
  last.finish = FinishReason::kLength;
  last.completion_tokens = 2;
  last.cached_tokens = 0;
  got.on_output(std::move(last));
  ASSERT_EQ(seen.size(), 2u);  // outputs pass through unchanged
  EXPECT_EQ(seen[1].finish, FinishReason::kLength);
  ASSERT_EQ(sink->spans.size(), 1u);
  const trace::SpanData& s = sink->spans[0];
  EXPECT_EQ(s.name, "generate");
  EXPECT_EQ(s.kind, trace::SpanKind::kServer);
  EXPECT_EQ(s.parent_span_id, caller.span_id);
  EXPECT_EQ(s.context.span_id, got.trace.span_id);
  EXPECT_FALSE(s.error);
  auto attr = [&](const std::string& k) -> const trace::Attribute* {
    for (const auto& a : s.attributes) {
      if (a.key == k) return &a;
    }
    return nullptr;
  };
  ASSERT_NE(attr("turbine.worker.instance_id"), nullptr);
  EXPECT_EQ(std::get<std::string>(attr("turbine.worker.instance_id")->value), "abc");
  EXPECT_EQ(std::get<int64_t>(attr("gen_ai.usage.input_tokens")->value), 3);
  EXPECT_EQ(std::get<int64_t>(attr("gen_ai.usage.output_tokens")->value), 2);
  EXPECT_EQ(std::get<std::string>(attr("gen_ai.response.finish_reason")->value), "length");
}

TEST(TracedEngineTest, ARefusedSubmitEndsTheSpanAsAnError) {
  auto sink = std::make_shared<Collect>();
  auto inner = std::make_shared<Recorder>();
  inner->refuse = true;
  TracedEngine engine(inner, std::make_shared<trace::Tracer>(sink));
  EngineRequest r;
  r.prompt = {1};
  r.on_output = [](EngineOutput&&) {};
  EXPECT_EQ(engine.submit(std::move(r)).code(), StatusCode::kResourceExhausted);
  ASSERT_EQ(sink->spans.size(), 1u);
  EXPECT_TRUE(sink->spans[0].error);
  EXPECT_EQ(sink->spans[0].status_message, "queue full");
  EXPECT_EQ(sink->spans[0].parent_span_id, trace::SpanId{});  // no caller context: a root
}

TEST(TracedEngineTest, WithoutTracingRequestsPassThroughUntouched) {
  auto inner = std::make_shared<Recorder>();
  TracedEngine engine(inner, std::make_shared<trace::Tracer>());
  const trace::TraceContext caller =
      *trace::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EngineRequest r;
  r.prompt = {1};
  r.trace = caller;
  r.on_output = [](EngineOutput&&) {};
  ASSERT_TRUE(engine.submit(std::move(r)).is_ok());
  EXPECT_EQ(inner->requests[0].trace, caller);
}

}  // namespace
}  // namespace turbine::engine
