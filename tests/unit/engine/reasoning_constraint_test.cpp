// Constraints that start after the reasoning (issue 20) in the engine: a scripted "model" that
// thinks (<think> h m </think>) and then wants free text ('z' forever). With a start trigger the
// reasoning is sampled without a mask, on the host and on a device sampler (no fill_mask); the
// grammar masks from the token after the end marker; a marker split over two tokens; a model
// that may open a block or not; a migrated request replays tokens before and after the trigger;
// max_tokens spent inside the reasoning ends with `length`.
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <string>

#include "engine/engine.h"
#include "structured/compiler.h"
#include "structured/vocabulary.h"

namespace turbine::engine {
namespace {

constexpr int32_t kVocab = 64;
constexpr int32_t kEos = 0;
const std::string kChars = "abcdefghijklmnopqrstuvwxyz0123456789";
// Markup tokens after the characters; special (never allowed by a grammar).
constexpr int32_t kOpen = 37;       // "<think>"
constexpr int32_t kClose = 38;      // "</think>"
constexpr int32_t kCloseHead = 39;  // "</"
constexpr int32_t kCloseTail = 40;  // "think>"
constexpr int32_t kPrompt = 50;     // a prompt token (padding: outside the tokenizer)

int32_t id_of(char c) {
  return static_cast<int32_t>(kChars.find(c)) + 1;
}

std::shared_ptr<structured::GrammarCompiler> compiler() {
  std::vector<std::string> bytes(1 + kChars.size());
  for (size_t i = 0; i < kChars.size(); ++i) bytes[i + 1] = std::string(1, kChars[i]);
  for (const char* m : {"<think>", "</think>", "</", "think>"}) bytes.emplace_back(m);
  std::vector<uint8_t> excluded(bytes.size(), 0);
  for (int32_t id : {kOpen, kClose, kCloseHead, kCloseTail}) excluded[id] = 1;
  auto v =
      structured::Vocabulary::from_tokens(std::move(bytes), std::move(excluded), {kEos}, kVocab);
  EXPECT_TRUE(v.has_value()) << v.status().to_string();
  return std::make_shared<structured::GrammarCompiler>(*v);
}

// The next token the "model" wants after `last` (logit 30; EOS 10, the rest 0): greedy sampling
// follows the script wherever the mask allows it, else takes the lowest allowed id.
using Script = std::map<int32_t, int32_t>;
const Script kThinks = {{kPrompt, kOpen},     {kOpen, id_of('h')},  {id_of('h'), id_of('m')},
                        {id_of('m'), kClose}, {kClose, id_of('z')}, {id_of('z'), id_of('z')}};
const Script kThinksSplit = {{kPrompt, kOpen},         {kOpen, id_of('h')},
                             {id_of('h'), id_of('m')}, {id_of('m'), kCloseHead},
                             {kCloseHead, kCloseTail}, {kCloseTail, id_of('z')},
                             {id_of('z'), id_of('z')}};
const Script kNeverThinks = {{kPrompt, id_of('z')}, {id_of('z'), id_of('z')}};

class ScriptedBackend : public Backend {
 public:
  ScriptedBackend(Script script, bool device) : script_(std::move(script)), device_(device) {}
  std::string_view name() const override { return "scripted"; }
  int max_context() const override { return 256; }
  int num_blocks() const override { return 64; }
  int block_size() const override { return 4; }
  Status forward(std::span<const SeqChunk> chunks, std::vector<float>& logits) override {
    logits.clear();
    for (const SeqChunk& c : chunks) {
      if (!c.want_logits) continue;
      const std::vector<float> r = row(c.tokens.back());
      logits.insert(logits.end(), r.begin(), r.end());
    }
    return Status::ok();
  }
  bool supports_sampling() const override { return device_; }
  bool supports_sampling_mask() const override { return device_; }
  // Greedy on the "device": the argmax among the allowed ids (lowest id on ties).
  Status forward_sample(std::span<const SeqChunk> chunks, std::span<const RowSampling> rows,
                        std::vector<int32_t>& tokens, std::vector<float>& logits) override {
    tokens.clear();
    logits.clear();
    size_t k = 0;
    for (const SeqChunk& c : chunks) {
      if (!c.want_logits) continue;
      const RowSampling& rs = rows[k++];
      const std::vector<float> r = row(c.tokens.back());
      if (rs.on_host) {
        tokens.push_back(-1);
        logits.insert(logits.end(), r.begin(), r.end());
        continue;
      }
      std::vector<uint32_t> mask((kVocab + 31) / 32, ~0u);
      if (rs.fill_mask) {
        rs.fill_mask(mask.data());
        ++masked_rows_;
      } else {
        ++free_rows_;
      }
      int32_t best = -1;
      for (int32_t id = 0; id < kVocab; ++id) {
        if (!((mask[static_cast<size_t>(id) / 32] >> (id % 32)) & 1u)) continue;
        if (best < 0 || r[static_cast<size_t>(id)] > r[static_cast<size_t>(best)]) best = id;
      }
      tokens.push_back(best < 0 ? 0 : best);
    }
    return Status::ok();
  }
  int masked_rows() const { return masked_rows_; }
  int free_rows() const { return free_rows_; }

 private:
  std::vector<float> row(int32_t last) const {
    std::vector<float> r(kVocab, 0.0f);
    r[kEos] = 10.0f;
    auto it = script_.find(last);
    if (it != script_.end()) r[static_cast<size_t>(it->second)] = 30.0f;
    return r;
  }
  const Script script_;
  const bool device_;
  int masked_rows_ = 0;
  int free_rows_ = 0;
};

struct Outcome {
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::kNone;
  Status error;
};

// `submitted`: submit()'s refusal, or the kError output of a request refused after its compile
// (a constraint not cached yet compiles off the submitting thread).
std::future<Outcome> run(Engine& engine, uint64_t id, std::vector<int32_t> prompt,
                         SamplingParams params, Status* submitted = nullptr) {
  auto promise = std::make_shared<std::promise<Outcome>>();
  auto acc = std::make_shared<Outcome>();
  if (submitted) *submitted = Status::ok();
  EngineRequest req;
  req.id = id;
  req.prompt = std::move(prompt);
  req.params = std::move(params);
  req.on_output = [promise, acc, submitted](EngineOutput&& out) {
    for (const auto& t : out.tokens) acc->tokens.push_back(t.token);
    if (out.finish != FinishReason::kNone) {
      acc->finish = out.finish;
      acc->error = out.error;
      if (submitted && out.finish == FinishReason::kError) *submitted = out.error;
      promise->set_value(*acc);
    }
  };
  Status st = engine.submit(std::move(req));
  if (submitted && !st.is_ok()) *submitted = st;
  if (!st.is_ok()) promise->set_value(*acc);
  return promise->get_future();
}

// Three digits, greedy.
SamplingParams digits(structured::StartTrigger start, int max_tokens = 32) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = max_tokens;
  p.constraint = {structured::ConstraintSpec::Kind::kRegex, "[0-9]{3}", std::move(start)};
  return p;
}

EngineOptions options() {
  EngineOptions o;
  o.max_num_seqs = 4;
  o.eos_token_ids = {kEos};
  o.grammar_compiler = compiler();
  return o;
}

const std::vector<int32_t> kZeros = {id_of('0'), id_of('0'), id_of('0')};

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

class ReasoningConstraintTest : public ::testing::TestWithParam<bool> {};  // device sampling?

TEST_P(ReasoningConstraintTest, TheGrammarStartsAfterTheEndMarker) {
  auto backend = std::make_unique<ScriptedBackend>(kThinks, GetParam());
  ScriptedBackend* b = backend.get();
  Engine engine(std::move(backend), kVocab, options());
  // Without a trigger the grammar masks the first token: no thinking.
  Outcome r = run(engine, 1, {kPrompt}, digits({})).get();
  EXPECT_EQ(r.finish, FinishReason::kStop) << r.error.to_string();
  EXPECT_EQ(r.tokens, kZeros);
  // The prompt left a block open: the reasoning and its marker are free, then only digits
  // ('z', the model's favourite after the marker, is masked).
  r = run(engine, 2, {kPrompt}, digits({.end = {kClose}})).get();
  EXPECT_EQ(r.finish, FinishReason::kStop) << r.error.to_string();
  EXPECT_EQ(r.tokens, concat({kOpen, id_of('h'), id_of('m'), kClose}, kZeros));
  // The output may open a block (Qwen3 with thinking on): it does.
  r = run(engine, 3, {kPrompt}, digits({.end = {kClose}, .open = {kOpen}})).get();
  EXPECT_EQ(r.finish, FinishReason::kStop) << r.error.to_string();
  EXPECT_EQ(r.tokens, concat({kOpen, id_of('h'), id_of('m'), kClose}, kZeros));
  if (GetParam()) {
    // Device rows: masked for the 3 + 3 digits and the may-open first token; free for the
    // reasoning of requests 2 (4 tokens) and 3 (3 after the opening).
    EXPECT_EQ(b->masked_rows(), 3 + 3 + 1 + 3);
    EXPECT_EQ(b->free_rows(), 4 + 3);
  }
  engine.shutdown();
}

TEST_P(ReasoningConstraintTest, AnEndMarkerOfTwoTokensIsMatchedAsASequence) {
  Engine engine(std::make_unique<ScriptedBackend>(kThinksSplit, GetParam()), kVocab, options());
  Outcome r = run(engine, 1, {kPrompt}, digits({.end = {kCloseHead, kCloseTail}})).get();
  EXPECT_EQ(r.finish, FinishReason::kStop) << r.error.to_string();
  EXPECT_EQ(r.tokens, concat({kOpen, id_of('h'), id_of('m'), kCloseHead, kCloseTail}, kZeros));
  // Only its first token: the reasoning never ends, 'z' follows unconstrained up to max_tokens.
  r = run(engine, 2, {kPrompt}, digits({.end = {kCloseHead, kClose}}, 8)).get();
  EXPECT_EQ(r.finish, FinishReason::kLength);
  EXPECT_EQ(r.tokens.size(), 8u);
  EXPECT_EQ(r.tokens.back(), id_of('z'));
  engine.shutdown();
}

TEST_P(ReasoningConstraintTest, AModelThatDoesNotOpenABlockIsConstrainedAtOnce) {
  Engine engine(std::make_unique<ScriptedBackend>(kNeverThinks, GetParam()), kVocab, options());
  Outcome r = run(engine, 1, {kPrompt}, digits({.end = {kClose}, .open = {kOpen}})).get();
  EXPECT_EQ(r.finish, FinishReason::kStop) << r.error.to_string();
  EXPECT_EQ(r.tokens, kZeros);
  engine.shutdown();
}

TEST_P(ReasoningConstraintTest, MaxTokensInsideTheReasoningEndsWithLength) {
  Engine engine(std::make_unique<ScriptedBackend>(kThinks, GetParam()), kVocab, options());
  Outcome r = run(engine, 1, {kPrompt}, digits({.end = {kClose}}, 3)).get();
  EXPECT_EQ(r.finish, FinishReason::kLength) << r.error.to_string();
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{kOpen, id_of('h'), id_of('m')}));
  // Cut right after the marker: no room is kept for the grammar inside the reasoning.
  r = run(engine, 2, {kPrompt}, digits({.end = {kClose}}, 5)).get();
  EXPECT_EQ(r.finish, FinishReason::kLength);
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{kOpen, id_of('h'), id_of('m'), kClose, id_of('0')}));
  engine.shutdown();
}

TEST_P(ReasoningConstraintTest, AMigratedRequestReplaysTheReasoningAndTheTrigger) {
  Engine engine(std::make_unique<ScriptedBackend>(kThinks, GetParam()), kVocab, options());
  // Moved inside the reasoning: the rest of it is free, then the digits.
  SamplingParams p = digits({.end = {kClose}, .open = {kOpen}});
  p.constraint_replay = 2;
  Outcome r = run(engine, 1, {kPrompt, kOpen, id_of('h')}, p).get();
  EXPECT_EQ(r.finish, FinishReason::kStop) << r.error.to_string();
  EXPECT_EQ(r.tokens, concat({id_of('m'), kClose}, kZeros));
  // Moved after the trigger and one digit: two more.
  p.constraint_replay = 5;
  r = run(engine, 2, {kPrompt, kOpen, id_of('h'), id_of('m'), kClose, id_of('7')}, p).get();
  EXPECT_EQ(r.finish, FinishReason::kStop) << r.error.to_string();
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{id_of('0'), id_of('0')}));
  // A token after the trigger that breaks the grammar cannot be replayed.
  SamplingParams bad = digits({.end = {kClose}, .open = {kOpen}});
  bad.constraint_replay = 3;
  Status st;
  run(engine, 3, {kPrompt, kOpen, kClose, id_of('z')}, bad, &st).get();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("do not match"), std::string::npos) << st.message();
  engine.shutdown();
}

INSTANTIATE_TEST_SUITE_P(HostAndDevice, ReasoningConstraintTest, ::testing::Bool());

TEST(ReasoningConstraintSubmitTest, BadTriggersAreRefused) {
  Engine engine(std::make_unique<ScriptedBackend>(kThinks, false), kVocab, options());
  Status st;
  run(engine, 1, {kPrompt}, digits({.end = {kVocab + 5}}), &st).get();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.field(), "constraint.regex");
  run(engine, 2, {kPrompt}, digits({.end = {}, .open = {kOpen}}), &st).get();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  // A trigger without a constraint.
  SamplingParams p;
  p.constraint.start.end = {kClose};
  run(engine, 3, {kPrompt}, p, &st).get();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  engine.shutdown();
}

}  // namespace
}  // namespace turbine::engine
