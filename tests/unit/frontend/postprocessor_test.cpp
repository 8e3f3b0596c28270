#include "frontend/postprocessor.h"

#include <gtest/gtest.h>

#include "fakes.h"

namespace turbine::frontend {
namespace {

using testing::FakeTokenizer;

engine::EngineOutput output(std::vector<int32_t> tokens,
                            engine::FinishReason finish = engine::FinishReason::kNone) {
  engine::EngineOutput out;
  for (int32_t t : tokens) out.tokens.push_back({t, -1.25f, {{t, -1.25f}}});
  out.finish = finish;
  out.cached_tokens = 3;
  return out;
}

class PostprocessorTest : public ::testing::Test {
 protected:
  ChoicePostprocessor make(PostprocessOptions opts = {},
                           std::vector<std::unique_ptr<TextProcessor>> processors = {}) {
    return ChoicePostprocessor(2, tok_, 0, std::move(opts), std::move(processors));
  }
  int32_t id(std::string_view piece) const { return tok_.id(piece); }
  FakeTokenizer tok_;
};

TEST_F(PostprocessorTest, TextFlowsAndTheFinishComesLast) {
  ChoicePostprocessor p = make();
  auto a = p.push(output({id(" Hello"), id(" world")}));
  EXPECT_EQ(a.delta.index, 2);
  EXPECT_EQ(a.delta.content, "Hello world");  // the first piece after BOS loses its space
  EXPECT_EQ(a.delta.finish, api::FinishReason::kNone);
  EXPECT_FALSE(a.finished);
  auto b = p.push(output({id("!")}, engine::FinishReason::kLength));
  EXPECT_EQ(b.delta.content, "!");
  EXPECT_EQ(b.delta.finish, api::FinishReason::kLength);
  EXPECT_TRUE(b.finished);
  EXPECT_FALSE(b.stop_string);
  EXPECT_EQ(p.completion_tokens(), 3);
  EXPECT_EQ(p.cached_tokens(), 3);
  // Outputs after the end (racing a cancel) are ignored.
  EXPECT_TRUE(p.push(output({id(" a")})).delta.empty());
  EXPECT_EQ(p.completion_tokens(), 3);
}

TEST_F(PostprocessorTest, EngineStopTokenAddsNoTextButCounts) {
  PostprocessOptions opts;
  opts.logprobs = true;
  ChoicePostprocessor p = make(opts);
  auto s = p.push(output({id(" a"), 1}, engine::FinishReason::kStop));
  EXPECT_EQ(s.delta.content, "a");
  EXPECT_EQ(s.delta.finish, api::FinishReason::kStop);
  ASSERT_EQ(s.delta.logprobs.size(), 2u);  // the EOS token has a logprob too
  EXPECT_EQ(s.delta.logprobs[0].token, " a");
  EXPECT_FLOAT_EQ(s.delta.logprobs[0].logprob, -1.25f);
  ASSERT_EQ(s.delta.logprobs[0].top.size(), 1u);
  EXPECT_EQ(p.completion_tokens(), 2);
}

TEST_F(PostprocessorTest, StopStringEndsTheChoiceAndAsksForACancel) {
  PostprocessOptions opts;
  opts.stop = {" STOP"};
  ChoicePostprocessor p = make(opts);
  auto a = p.push(output({id(" a"), id(" b")}));
  EXPECT_EQ(a.delta.content, "a b");
  auto b = p.push(output({id(" c"), id(" STOP"), id(" the")}));
  EXPECT_EQ(b.delta.content, " c");
  EXPECT_TRUE(b.stop_string);
  EXPECT_TRUE(b.finished);
  EXPECT_EQ(b.delta.finish, api::FinishReason::kStop);
  EXPECT_EQ(p.completion_tokens(), 4);  // tokens after the stop string are not counted
}

TEST_F(PostprocessorTest, PartialStopStringIsHeldThenReleased) {
  PostprocessOptions opts;
  opts.stop = {" the end!"};
  ChoicePostprocessor p = make(opts);
  auto a = p.push(output({id(" a"), id(" the"), id(" end")}));
  EXPECT_EQ(a.delta.content, "a");  // " the end" may still become the stop string
  auto b = p.push(output({id(" b")}, engine::FinishReason::kLength));
  EXPECT_EQ(b.delta.content, " the end b");
  EXPECT_EQ(b.delta.finish, api::FinishReason::kLength);
}

TEST_F(PostprocessorTest, SplitUtf8WaitsForItsSecondByte) {
  ChoicePostprocessor p = make();
  auto a = p.push(output({id(" a"), id("\xC3")}));
  EXPECT_EQ(a.delta.content, "a");
  auto b = p.push(output({id("\xA9")}));
  EXPECT_EQ(b.delta.content, "\xC3\xA9");
  // An incomplete tail at the end becomes U+FFFD.
  ChoicePostprocessor q = make();
  auto c = q.push(output({id("x"), id("\xC3")}, engine::FinishReason::kLength));
  EXPECT_EQ(c.delta.content, "x\xEF\xBF\xBD");
}

TEST_F(PostprocessorTest, EngineErrorIsAnAbortWithTheStatus) {
  ChoicePostprocessor p = make();
  engine::EngineOutput out = output({id(" a")}, engine::FinishReason::kError);
  out.error = Status(StatusCode::kUnavailable, "worker lost");
  auto s = p.push(out);
  EXPECT_EQ(s.delta.finish, api::FinishReason::kAbort);
  ASSERT_TRUE(p.error().has_value());
  EXPECT_EQ(p.error()->message(), "worker lost");
  EXPECT_EQ(to_api_finish(engine::FinishReason::kCancelled), api::FinishReason::kAbort);
}

TEST_F(PostprocessorTest, SkipSpecialTokensFalseKeepsThem) {
  PostprocessOptions opts;
  opts.skip_special_tokens = false;
  ChoicePostprocessor p = make(opts);
  auto s = p.push(output({id(" a"), 0, id(" b")}, engine::FinishReason::kLength));
  EXPECT_EQ(s.delta.content, "a<s>b");  // after BOS, as SentencePiece decodes
}

// A toy reasoning parser: text inside <think>...</think> is reasoning (tags split anywhere are
// held back until they are known).
class ThinkSplitter final : public TextProcessor {
 public:
  void push(std::string_view text, api::ChoiceDelta& out) override {
    held_ += text;
    for (;;) {
      const std::string_view tag = in_ ? "</think>" : "<think>";
      const size_t at = held_.find(tag);
      if (at == std::string::npos) break;
      emit(held_.substr(0, at), out);
      held_.erase(0, at + tag.size());
      in_ = !in_;
    }
    // Keep what could be the start of a tag.
    size_t keep = 0;
    const std::string_view tag = in_ ? "</think>" : "<think>";
    for (size_t k = 1; k < tag.size() && k <= held_.size(); ++k) {
      if (std::string_view(held_).substr(held_.size() - k) == tag.substr(0, k)) keep = k;
    }
    emit(held_.substr(0, held_.size() - keep), out);
    held_.erase(0, held_.size() - keep);
  }
  void flush(api::ChoiceDelta& out) override {
    emit(held_, out);
    held_.clear();
  }

 private:
  void emit(const std::string& s, api::ChoiceDelta& out) {
    (in_ ? out.reasoning : out.content) += s;
  }
  std::string held_;
  bool in_ = false;
};

// A toy tool parser: content "CALL" becomes one call and the finish "tool_calls".
class CallMaker final : public TextProcessor {
 public:
  void push(std::string_view text, api::ChoiceDelta& out) override {
    seen_ += text;
    if (seen_.find("x") != std::string::npos && !called_) {
      called_ = true;
      out.tool_calls.push_back({0, "call_1", "f", "{}"});
      return;
    }
    if (!called_) out.content += text;
  }
  void flush(api::ChoiceDelta& out) override {
    if (called_ && out.finish == api::FinishReason::kStop)
      out.finish = api::FinishReason::kToolCalls;
  }

 private:
  std::string seen_;
  bool called_ = false;
};

TEST_F(PostprocessorTest, TextProcessorsChainContentAndFlushAtTheEnd) {
  std::vector<std::unique_ptr<TextProcessor>> procs;
  procs.push_back(std::make_unique<ThinkSplitter>());
  procs.push_back(std::make_unique<CallMaker>());
  ChoicePostprocessor p = make({}, std::move(procs));
  api::ChoiceDelta all;
  auto add = [&all](const api::ChoiceDelta& d) {
    all.content += d.content;
    all.reasoning += d.reasoning;
    for (const auto& c : d.tool_calls) all.tool_calls.push_back(c);
    if (d.finish != api::FinishReason::kNone) all.finish = d.finish;
  };
  add(p.push(output({id("<think>"), id(" a")})).delta);
  add(p.push(output({id(" b"), id("</think>"), id(" Hello")})).delta);
  add(p.push(output({id("x"), 1}, engine::FinishReason::kStop)).delta);
  EXPECT_EQ(all.reasoning, " a b");
  EXPECT_EQ(all.content, " Hello");
  ASSERT_EQ(all.tool_calls.size(), 1u);
  EXPECT_EQ(all.tool_calls[0].name, "f");
  EXPECT_EQ(all.finish, api::FinishReason::kToolCalls);
}

TEST_F(PostprocessorTest, HeldTextOfAProcessorGoesThroughTheNextAtFlush) {
  std::vector<std::unique_ptr<TextProcessor>> procs;
  procs.push_back(std::make_unique<ThinkSplitter>());
  ChoicePostprocessor p = make({}, std::move(procs));
  // "<" could start "<think>": held by the splitter until the end, then released as content.
  auto a = p.push(output({id(" a"), id("<")}));
  EXPECT_EQ(a.delta.content, "a");
  auto b = p.push(output({}, engine::FinishReason::kLength));
  EXPECT_EQ(b.delta.content, "<");
  EXPECT_EQ(b.delta.finish, api::FinishReason::kLength);
}

TEST_F(PostprocessorTest, EchoIsAPlainDelta) {
  ChoicePostprocessor p = make();
  api::ChoiceDelta d = p.echo("prompt");
  EXPECT_EQ(d.index, 2);
  EXPECT_EQ(d.content, "prompt");
  EXPECT_EQ(d.finish, api::FinishReason::kNone);
}

}  // namespace
}  // namespace turbine::frontend
