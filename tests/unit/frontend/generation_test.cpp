// The generation stage end to end, without HTTP or an engine thread: a fake engine the test
// drives, a fake ResponseWriter, one io_context on the test thread.
#include "frontend/generation.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "frontend/engine_call.h"
#include "generation_fixture.h"

namespace turbine::frontend {
namespace {

namespace json = boost::json;
using testing::FakeEngine;
using testing::FakeTokenizer;
using testing::FakeWriter;
using testing::Loop;

std::vector<json::value> data_events(const std::string& sse) {
  std::vector<json::value> out;
  size_t at = 0;
  while ((at = sse.find("data: ", at)) != std::string::npos) {
    const size_t end = sse.find("\n\n", at);
    const std::string_view d = std::string_view(sse).substr(at + 6, end - at - 6);
    out.push_back(d == "[DONE]" ? json::value("[DONE]") : json::parse(d));
    at = end;
  }
  return out;
}

class GenerationTest : public testing::GenerationFixture {
 protected:
  GenerationTest() : GenerationFixture(/*first_id=*/100) {}

  // `request` prepared as the preprocessor would, with a header to pass through.
  Generation generation(const ProtocolAdapter& protocol, const ParsedRequest& request) {
    Generation g = GenerationFixture::generation(protocol, request);
    g.headers = {{"x-test", "1"}};
    return g;
  }

  api::CompletionRequest completion(std::vector<std::string> prompts, bool stream) {
    api::CompletionRequest r;
    r.model = "m";
    for (auto& p : prompts) r.prompts.push_back({std::move(p), {}, false});
    r.sampling.stream = stream;
    r.sampling.max_tokens = 8;
    return r;
  }

  api::ChatRequest chat(bool stream) { return chat_request(stream, /*max_tokens=*/8); }

  double metric(std::string_view prefix) {
    const std::string text = metrics_.serialize();
    size_t at = 0;
    while ((at = text.find(prefix, at)) != std::string::npos) {
      if (at == 0 || text[at - 1] == '\n') {
        const size_t eol = text.find('\n', at);
        const std::string line = text.substr(at, eol - at);
        return std::stod(line.substr(line.rfind(' ') + 1));
      }
      ++at;
    }
    return -1;
  }
};

TEST_F(GenerationTest, UnaryCompletionOfABatch) {
  start(generation(*completions_, completion({" a", " b"}, false)));
  loop_.poll();
  ASSERT_EQ(engine_->submitted.size(), 2u);
  EXPECT_EQ(engine_->submitted[0].id, 100u);
  EXPECT_EQ(engine_->submitted[0].params.max_tokens, 8);
  EXPECT_EQ(inflight_.load(), 1);
  engine_->emit(1, {id(" c")});
  engine_->emit(0, {id(" Hello"), id(" world")}, engine::FinishReason::kLength);
  loop_.poll();
  EXPECT_FALSE(loop_.done());  // choice 1 is still running
  engine_->emit(1, {1}, engine::FinishReason::kStop);
  loop_.poll();
  ASSERT_TRUE(loop_.done());
  EXPECT_EQ(inflight_.load(), 0);
  EXPECT_EQ(writer_.status, 200);
  EXPECT_EQ(writer_.header("x-test"), "1");
  json::value body = json::parse(writer_.body);
  const auto& choices = body.at("choices").as_array();
  ASSERT_EQ(choices.size(), 2u);
  EXPECT_EQ(choices[0].at("text").as_string(), " Hello world");
  EXPECT_EQ(choices[0].at("finish_reason").as_string(), "length");
  EXPECT_EQ(choices[1].at("text").as_string(), " c");
  EXPECT_EQ(choices[1].at("finish_reason").as_string(), "stop");
  EXPECT_EQ(body.at("usage").at("prompt_tokens").as_int64(), 4);
  EXPECT_EQ(body.at("usage").at("completion_tokens").as_int64(), 4);
  EXPECT_TRUE(engine_->cancelled.empty());
  EXPECT_EQ(metric("turbine_frontend_inflight_requests{model=\"m\"}"), 0);
}

TEST_F(GenerationTest, StreamedChatWithUsageAndStopString) {
  api::ChatRequest r = chat(true);
  r.sampling.include_usage = true;
  r.sampling.stop = {" STOP"};
  start(generation(*chat_, r));
  loop_.poll();
  ASSERT_TRUE(writer_.streaming);
  EXPECT_EQ(writer_.content_type, "text/event-stream");
  EXPECT_EQ(writer_.header("x-test"), "1");
  engine_->cached_tokens = 2;
  engine_->emit(0, {id(" Hello")});
  loop_.poll();
  engine_->emit(0, {id(" world"), id(" STOP"), id(" a")});
  loop_.poll();
  ASSERT_TRUE(loop_.done());
  // The stop string cancelled the engine request.
  EXPECT_EQ(engine_->cancelled, (std::vector<uint64_t>{100}));
  EXPECT_TRUE(writer_.ended);
  auto ev = data_events(writer_.stream());
  ASSERT_EQ(ev.size(), 6u);  // role, "Hello", " world", finish, usage, [DONE]
  EXPECT_EQ(ev[0].at("choices").at(0).at("delta").at("role").as_string(), "assistant");
  EXPECT_EQ(ev[1].at("choices").at(0).at("delta").at("content").as_string(), "Hello");
  EXPECT_EQ(ev[2].at("choices").at(0).at("delta").at("content").as_string(), " world");
  EXPECT_EQ(ev[3].at("choices").at(0).at("finish_reason").as_string(), "stop");
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(ev[i].at("usage").is_null()) << i;
  EXPECT_EQ(ev[4].at("usage").at("completion_tokens").as_int64(), 3);
  EXPECT_EQ(ev[4].at("usage").at("prompt_tokens_details").at("cached_tokens").as_int64(), 2);
  EXPECT_EQ(ev[5].as_string(), "[DONE]");
  // One write per engine wake-up: role chunk, then one per output.
  EXPECT_EQ(writer_.chunks.size(), 4u);
}

TEST_F(GenerationTest, InterleavedStreamOfTwoPrompts) {
  start(generation(*completions_, completion({" a", " b"}, true)));
  loop_.poll();
  engine_->emit(1, {id(" c")});
  engine_->emit(0, {id(" the")});
  engine_->emit(1, {id(" end")}, engine::FinishReason::kLength);
  loop_.poll();
  engine_->emit(0, {id("!")}, engine::FinishReason::kLength);
  loop_.poll();
  ASSERT_TRUE(loop_.done());
  auto ev = data_events(writer_.stream());
  ASSERT_EQ(ev.size(), 5u);
  std::vector<std::pair<int64_t, std::string>> seen;
  for (size_t i = 0; i + 1 < ev.size(); ++i) {
    const auto& c = ev[i].at("choices").at(0);
    seen.emplace_back(c.at("index").as_int64(), std::string(c.at("text").as_string()));
  }
  EXPECT_EQ(seen, (std::vector<std::pair<int64_t, std::string>>{
                      {1, " c"}, {0, " the"}, {1, " end"}, {0, "!"}}));
  EXPECT_EQ(ev[2].at("choices").at(0).at("finish_reason").as_string(), "length");
  EXPECT_TRUE(ev[1].at("choices").at(0).at("finish_reason").is_null());
  EXPECT_FALSE(ev[0].as_object().contains("usage"));
}

TEST_F(GenerationTest, SubmitFailureCancelsWhatWasSubmittedAndAnswersTheError) {
  engine_->fail_submit_at = 1;
  start(generation(*completions_, completion({" a", " b"}, true)));
  loop_.poll();
  ASSERT_TRUE(loop_.done());
  EXPECT_EQ(engine_->cancelled, (std::vector<uint64_t>{100}));
  EXPECT_FALSE(writer_.streaming);
  EXPECT_EQ(writer_.status, 429);
  EXPECT_EQ(writer_.header("x-test"), "1");
  EXPECT_EQ(json::parse(writer_.body).at("error").at("type").as_string(), "rate_limit_error");
  EXPECT_EQ(inflight_.load(), 0);
}

TEST_F(GenerationTest, ClientGoneCancelsEveryOpenChoice) {
  start(generation(*completions_, completion({" a", " b"}, false)));
  loop_.poll();
  engine_->emit(0, {id(" c")}, engine::FinishReason::kLength);
  loop_.poll();
  writer_.disconnect();
  loop_.poll();
  ASSERT_TRUE(loop_.done());
  EXPECT_EQ(engine_->cancelled, (std::vector<uint64_t>{101}));  // choice 0 had finished
  EXPECT_FALSE(writer_.sent);
  EXPECT_EQ(metric("turbine_frontend_disconnected_clients{model=\"m\"}"), 1);
  EXPECT_EQ(inflight_.load(), 0);
}

TEST_F(GenerationTest, EngineErrorIsA500ForUnaryAndAnAbortForStreams) {
  start(generation(*chat_, chat(false)));
  loop_.poll();
  engine_->emit(0, {id(" a")}, engine::FinishReason::kError,
                Status(StatusCode::kInternal, "kernel failed"));
  loop_.poll();
  ASSERT_TRUE(loop_.done());
  EXPECT_EQ(writer_.status, 500);
  EXPECT_NE(writer_.body.find("kernel failed"), std::string::npos);

  FakeWriter stream_writer;
  Loop loop;
  loop.spawn(run_generation(env_, generation(*chat_, chat(true)), stream_writer));
  loop.poll();
  engine_->emit(1, {id(" a")}, engine::FinishReason::kError,
                Status(StatusCode::kUnavailable, "worker lost"));
  loop.poll();
  ASSERT_TRUE(loop.done());
  auto ev = data_events(stream_writer.stream());
  ASSERT_GE(ev.size(), 3u);
  EXPECT_EQ(ev[ev.size() - 2].at("choices").at(0).at("finish_reason").as_string(), "abort");
}

TEST_F(GenerationTest, CannedResponseNeedsNoEngine) {
  CannedResponse canned;
  api::ChoiceDelta d;
  d.content = "I can't help with that.";
  d.finish = api::FinishReason::kContentFilter;
  canned.choices.push_back(d);
  auto request = std::make_shared<ParsedRequest>(chat(false));
  std::get<api::ChatRequest>(*request).model = "MoM";
  loop_.spawn(send_canned(env_, *chat_, request, canned, {{"x-vsr-guard", "jailbreak"}}, writer_));
  loop_.poll();
  ASSERT_TRUE(loop_.done());
  EXPECT_TRUE(engine_->submitted.empty());
  EXPECT_EQ(writer_.status, 200);
  EXPECT_EQ(writer_.header("x-vsr-guard"), "jailbreak");
  json::value body = json::parse(writer_.body);
  EXPECT_EQ(body.at("model").as_string(), "MoM");
  EXPECT_EQ(body.at("choices").at(0).at("message").at("content").as_string(),
            "I can't help with that.");
  EXPECT_EQ(body.at("choices").at(0).at("finish_reason").as_string(), "content_filter");

  FakeWriter sw;
  Loop loop;
  auto streamed = std::make_shared<ParsedRequest>(chat(true));
  std::get<api::ChatRequest>(*streamed).model = "MoM";
  loop.spawn(send_canned(env_, *chat_, streamed, canned, {}, sw));
  loop.poll();
  auto ev = data_events(sw.stream());
  ASSERT_EQ(ev.size(), 4u);  // role, content, finish, [DONE]
  EXPECT_EQ(ev[1].at("choices").at(0).at("delta").at("content").as_string(),
            "I can't help with that.");
  EXPECT_TRUE(sw.ended);
}

// A replayed answer in pieces (several deltas of one choice): one message when unary, one
// chunk per piece when streamed, with the usage it was given.
TEST_F(GenerationTest, CannedResponseInPieces) {
  CannedResponse canned;
  for (const char* piece : {"Paris ", "is ", "the ", "capital."}) {
    api::ChoiceDelta d;
    d.content = piece;
    canned.choices.push_back(d);
  }
  api::ChoiceDelta last;
  last.finish = api::FinishReason::kStop;
  canned.choices.push_back(last);
  canned.usage.prompt_tokens = 7;
  canned.usage.completion_tokens = 4;
  canned.model = "real-model";
  auto request = std::make_shared<ParsedRequest>(chat(false));
  loop_.spawn(send_canned(env_, *chat_, request, canned, {}, writer_));
  loop_.poll();
  ASSERT_TRUE(loop_.done());
  json::value body = json::parse(writer_.body);
  EXPECT_EQ(body.at("model").as_string(), "real-model");
  ASSERT_EQ(body.at("choices").as_array().size(), 1u);
  EXPECT_EQ(body.at("choices").at(0).at("message").at("content").as_string(),
            "Paris is the capital.");
  EXPECT_EQ(body.at("choices").at(0).at("finish_reason").as_string(), "stop");
  EXPECT_EQ(body.at("usage").at("completion_tokens").as_int64(), 4);

  FakeWriter sw;
  Loop loop;
  api::ChatRequest c = chat(true);
  c.sampling.include_usage = true;
  auto streamed = std::make_shared<ParsedRequest>(c);
  loop.spawn(send_canned(env_, *chat_, streamed, canned, {}, sw));
  loop.poll();
  auto ev = data_events(sw.stream());
  ASSERT_EQ(ev.size(), 8u);  // role, 4 pieces, finish, usage, [DONE]
  std::string text;
  for (size_t i = 1; i <= 4; ++i) {
    EXPECT_EQ(ev[i].at("choices").at(0).at("index").as_int64(), 0);
    text += ev[i].at("choices").at(0).at("delta").at("content").as_string();
  }
  EXPECT_EQ(text, "Paris is the capital.");
  EXPECT_EQ(ev[5].at("choices").at(0).at("finish_reason").as_string(), "stop");
  EXPECT_EQ(ev[6].at("usage").at("prompt_tokens").as_int64(), 7);
}

TEST_F(GenerationTest, EngineCallMetricsSettleWhenDestroyedEarly) {
  metrics::ModelMetrics& mm = metrics_.model("m");
  {
    Loop loop;
    EngineCall call(*engine_, mm, loop.io().get_executor(), next_id_);
    Preprocessor pre;
    auto p = pre.prepare(completion({" a"}, false), *model_, "prompt");
    ASSERT_TRUE(p.has_value());
    ASSERT_TRUE(call.submit(p->choices, 0x1234, {}).is_ok());
    EXPECT_EQ(engine_->submitted[0].routing.instance_id, 0x1234u);
    EXPECT_EQ(metric("turbine_frontend_queued_requests{model=\"m\"}"), 1);
    EXPECT_EQ(call.open(), 1u);
  }
  EXPECT_EQ(engine_->cancelled.size(), 1u);  // destroyed while open: cancelled
  EXPECT_EQ(metric("turbine_frontend_queued_requests{model=\"m\"}"), 0);
}

}  // namespace
}  // namespace turbine::frontend

// Completions with echo and logprobs (issue 18 item 4): the echo waits for the first output and
// carries the prompt tokens' logprobs, the first one null.
namespace turbine::frontend {
namespace {

TEST_F(GenerationTest, EchoScoringRequestReturnsThePromptLogprobs) {
  api::CompletionRequest r = completion({" a b"}, false);
  r.sampling.echo = true;
  r.sampling.logprobs = 1;
  r.sampling.max_tokens = 0;
  start(generation(*completions_, r));
  loop_.poll();
  ASSERT_EQ(engine_->submitted.size(), 1u);
  EXPECT_EQ(engine_->submitted[0].params.prompt_logprobs, 1);
  EXPECT_EQ(engine_->submitted[0].params.max_tokens, 0);
  engine_->prompt_logprobs = {{id(" a"), -1.5f, {{id(" b"), -0.5f}}},
                              {id(" b"), -0.25f, {{id(" b"), -0.25f}}}};
  engine_->emit(0, {}, engine::FinishReason::kLength);
  loop_.poll();
  ASSERT_TRUE(loop_.done());
  ASSERT_EQ(writer_.status, 200) << writer_.body;
  json::value body = json::parse(writer_.body);
  const json::value& c = body.at("choices").at(0);
  EXPECT_EQ(c.at("text").as_string(), " a b");
  EXPECT_EQ(c.at("finish_reason").as_string(), "length");
  const json::value& lp = c.at("logprobs");
  ASSERT_EQ(lp.at("tokens").as_array().size(), 3u);
  EXPECT_EQ(lp.at("tokens").at(0).as_string(), "");  // BOS: a special token has no bytes
  EXPECT_EQ(lp.at("tokens").at(1).as_string(), " a");
  EXPECT_TRUE(lp.at("token_logprobs").at(0).is_null());
  EXPECT_DOUBLE_EQ(lp.at("token_logprobs").at(1).to_number<double>(), -1.5);
  EXPECT_DOUBLE_EQ(lp.at("token_logprobs").at(2).to_number<double>(), -0.25);
  EXPECT_TRUE(lp.at("top_logprobs").at(0).is_null());
  EXPECT_DOUBLE_EQ(lp.at("top_logprobs").at(1).at(" b").to_number<double>(), -0.5);
  EXPECT_EQ(lp.at("text_offset").at(0).as_int64(), 0);
  EXPECT_EQ(lp.at("text_offset").at(1).as_int64(), 0);  // where " a" starts in the echo
  EXPECT_EQ(lp.at("text_offset").at(2).as_int64(), 2);
  EXPECT_EQ(body.at("usage").at("completion_tokens").as_int64(), 0);
  EXPECT_EQ(body.at("usage").at("prompt_tokens").as_int64(), 3);
}

TEST_F(GenerationTest, StreamedEchoSendsThePromptAndItsLogprobsFirst) {
  api::CompletionRequest r = completion({" a"}, true);
  r.sampling.echo = true;
  r.sampling.logprobs = 0;
  r.sampling.max_tokens = 2;
  start(generation(*completions_, r));
  loop_.poll();
  ASSERT_EQ(engine_->submitted.size(), 1u);
  EXPECT_EQ(engine_->submitted[0].params.prompt_logprobs, 0);
  engine_->prompt_logprobs = {{id(" a"), -3.0f, {}}};
  engine_->emit(0, {id(" c")});
  engine_->emit(0, {id(" the")}, engine::FinishReason::kLength);
  loop_.poll();
  ASSERT_TRUE(loop_.done());
  const std::vector<json::value> ev = data_events(writer_.stream());
  ASSERT_GE(ev.size(), 3u);
  const json::value& first = ev[0].at("choices").at(0);
  EXPECT_EQ(first.at("text").as_string(), " a");
  ASSERT_EQ(first.at("logprobs").at("tokens").as_array().size(), 2u);
  EXPECT_TRUE(first.at("logprobs").at("token_logprobs").at(0).is_null());
  EXPECT_DOUBLE_EQ(first.at("logprobs").at("token_logprobs").at(1).to_number<double>(), -3.0);
  const json::value& second = ev[1].at("choices").at(0);
  EXPECT_EQ(second.at("text").as_string(), " c");
  EXPECT_EQ(second.at("logprobs").at("tokens").at(0).as_string(), " c");
  EXPECT_EQ(second.at("logprobs").at("text_offset").at(0).as_int64(), 2);  // after the echo
}

TEST_F(GenerationTest, EchoWithoutLogprobsAsksForNoPromptLogprobs) {
  api::CompletionRequest r = completion({" a"}, false);
  r.sampling.echo = true;
  r.sampling.max_tokens = 0;
  start(generation(*completions_, r));
  loop_.poll();
  ASSERT_EQ(engine_->submitted.size(), 1u);
  EXPECT_EQ(engine_->submitted[0].params.prompt_logprobs, -1);
  engine_->emit(0, {}, engine::FinishReason::kLength);
  loop_.poll();
  ASSERT_TRUE(loop_.done());
  json::value body = json::parse(writer_.body);
  EXPECT_EQ(body.at("choices").at(0).at("text").as_string(), " a");
  EXPECT_TRUE(body.at("choices").at(0).at("logprobs").is_null());
}

}  // namespace
}  // namespace turbine::frontend
