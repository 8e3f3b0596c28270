// Structured outputs in the engine (issue 19): each constrained sequence's matcher masks the host
// sampler (and feeds a device sampler through RowSampling::fill_mask), EOS only where the
// constraint may end, a complete constraint finishes with kStop, preemption keeps the matcher,
// a migrated request (constraint_replay) continues under its constraint, and a bad constraint
// or replay is refused (at submit when cached, else as the request's kError output). A step's
// masks are filled on several threads with the same result as on one; a cold constraint compiles
// off the submitting thread, which meanwhile serves other requests.
#include <gtest/gtest.h>

#include <cmath>
#include <condition_variable>
#include <future>
#include <mutex>
#include <regex>
#include <string>

#include "engine/engine.h"
#include "structured/compiler.h"
#include "structured/vocabulary.h"

namespace turbine::engine {
namespace {

constexpr int32_t kVocab = 64;  // logits rows; the tokenizer has fewer ids (padding never allowed)
constexpr int32_t kEos = 0;
const std::string kChars = "abcdefghijklmnopqrstuvwxyz{}\":,0123456789 ";

int32_t id_of(char c) {
  return static_cast<int32_t>(kChars.find(c)) + 1;
}

std::shared_ptr<structured::GrammarCompiler> compiler() {
  std::vector<std::string> bytes(1 + kChars.size());
  for (size_t i = 0; i < kChars.size(); ++i) bytes[i + 1] = std::string(1, kChars[i]);
  std::vector<uint8_t> excluded(bytes.size(), 0);
  auto v =
      structured::Vocabulary::from_tokens(std::move(bytes), std::move(excluded), {kEos}, kVocab);
  EXPECT_TRUE(v.has_value()) << v.status().to_string();
  return std::make_shared<structured::GrammarCompiler>(*v);
}

// Logits that would never follow a constraint on their own: EOS, then 'z' and a padding id, are
// far likelier than anything else. Counts positions so preemption can be observed; optionally
// samples on its "device" (the first allowed id of the mask, as a device sampler restricted to
// it would do with these logits only when it honours the mask).
// Holds the engine's steps while closed, so that a test can queue several requests before the
// first step runs.
struct StepGate {
  std::mutex mu;
  std::condition_variable cv;
  bool closed = false;
  void wait() {
    std::unique_lock lock(mu);
    cv.wait(lock, [this] { return !closed; });
  }
  void open() {
    {
      std::lock_guard lock(mu);
      closed = false;
    }
    cv.notify_all();
  }
};

class BiasedBackend : public Backend {
 public:
  BiasedBackend(int num_blocks, int block_size, bool device,
                std::shared_ptr<StepGate> gate = nullptr)
      : blocks_(num_blocks), bs_(block_size), device_(device), gate_(std::move(gate)) {}
  std::string_view name() const override { return "biased"; }
  int max_context() const override { return 256; }
  int num_blocks() const override { return blocks_; }
  int block_size() const override { return bs_; }
  Status forward(std::span<const SeqChunk> chunks, std::vector<float>& logits) override {
    if (gate_) gate_->wait();
    logits.clear();
    for (const SeqChunk& c : chunks) {
      if (c.want_logits) append_row(logits);
    }
    return Status::ok();
  }
  bool supports_sampling() const override { return device_; }
  bool supports_sampling_mask() const override { return device_; }
  Status forward_sample(std::span<const SeqChunk> chunks, std::span<const RowSampling> rows,
                        std::vector<int32_t>& tokens, std::vector<float>& logits) override {
    if (gate_) gate_->wait();
    tokens.clear();
    logits.clear();
    (void)chunks;
    for (const RowSampling& r : rows) {
      if (r.on_host) {
        tokens.push_back(-1);
        append_row(logits);
        continue;
      }
      if (!r.fill_mask) {
        tokens.push_back(kEos);  // unconstrained: the biased choice
        continue;
      }
      std::vector<uint32_t> mask((kVocab + 31) / 32, 0);
      r.fill_mask(mask.data());
      masked_rows_++;
      int32_t pick = -1;
      // Prefer EOS when allowed, then the highest allowed id (the "wrong" end of the vocabulary).
      if (mask[0] & 1u) pick = kEos;
      for (int32_t id = kVocab - 1; id > 0 && pick < 0; --id)
        if ((mask[static_cast<size_t>(id) / 32] >> (id % 32)) & 1u) pick = id;
      tokens.push_back(pick < 0 ? 0 : pick);
    }
    return Status::ok();
  }
  int masked_rows() const { return masked_rows_; }

 private:
  static void append_row(std::vector<float>& logits) {
    std::vector<float> row(kVocab, 0.0f);
    row[kEos] = 30.0f;
    row[static_cast<size_t>(id_of('z'))] = 20.0f;
    row[kVocab - 1] = 25.0f;  // padding: outside the tokenizer
    logits.insert(logits.end(), row.begin(), row.end());
  }
  int blocks_, bs_;
  bool device_;
  std::shared_ptr<StepGate> gate_;
  int masked_rows_ = 0;
};

struct Outcome {
  std::string text;
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::kNone;
  Status error;
};

// `submitted`: submit()'s refusal, or the kError output of a request refused after its compile.
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
    for (const auto& t : out.tokens) {
      acc->tokens.push_back(t.token);
      if (t.token > 0 && t.token <= static_cast<int32_t>(kChars.size()))
        acc->text += kChars[static_cast<size_t>(t.token - 1)];
    }
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

SamplingParams regex(const std::string& re, int max_tokens = 64, uint64_t seed = 1) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = seed;
  p.max_tokens = max_tokens;
  p.constraint = {structured::ConstraintSpec::Kind::kRegex, re};
  return p;
}

EngineOptions options(int max_num_seqs = 4) {
  EngineOptions o;
  o.max_num_seqs = max_num_seqs;
  o.eos_token_ids = {kEos};
  o.grammar_compiler = compiler();
  return o;
}

TEST(EngineConstrainedTest, TheMaskOverridesTheModelAndEosWaitsForACompleteOutput) {
  Engine engine(std::make_unique<BiasedBackend>(64, 4, false), kVocab, options());
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    // EOS is the model's favourite; it is allowed only after "abab" or "ababab".
    Outcome r = run(engine, seed, {1, 2}, regex("(ab){2,3}", 64, seed)).get();
    EXPECT_EQ(r.finish, FinishReason::kStop) << r.error.to_string();
    EXPECT_EQ(r.text, "abab");  // EOS as soon as it is allowed (30 vs 0 logits)
    EXPECT_EQ(r.tokens.back(), kEos);
  }
  // Unconstrained, the same request stops at once.
  SamplingParams free = regex("", 8);
  free.constraint = {};
  EXPECT_EQ(run(engine, 99, {1, 2}, free).get().tokens, std::vector<int32_t>{kEos});
  engine.shutdown();
}

TEST(EngineConstrainedTest, ACompleteConstraintFinishesWithStopWithoutSamplingEos) {
  Engine engine(std::make_unique<BiasedBackend>(64, 4, false), kVocab, options());
  Outcome r = run(engine, 1, {1}, regex("[0-9]{5}")).get();
  EXPECT_EQ(r.finish, FinishReason::kStop);
  ASSERT_EQ(r.text.size(), 5u);
  EXPECT_TRUE(std::regex_match(r.text, std::regex("[0-9]{5}"))) << r.text;
  EXPECT_EQ(r.tokens.size(), 5u);  // no EOS token: nothing else could follow
  // A choice and a JSON schema.
  SamplingParams p = regex("");
  p.constraint = {structured::ConstraintSpec::Kind::kChoice, R"(["yes","no","maybe"])"};
  r = run(engine, 2, {1}, p).get();
  EXPECT_TRUE(r.text == "yes" || r.text == "no" || r.text == "maybe") << r.text;
  p.constraint = {
      structured::ConstraintSpec::Kind::kJsonSchema,
      R"({"type":"object","properties":{"a":{"type":"integer","minimum":1,"maximum":9}},"required":["a"],"additionalProperties":false})"};
  r = run(engine, 3, {1}, p).get();
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_TRUE(std::regex_match(r.text, std::regex(R"(\{ *"a" *: *[1-9] *\})"))) << r.text;
  engine.shutdown();
}

TEST(EngineConstrainedTest, MaxTokensCutsAValidPrefixWithLength) {
  Engine engine(std::make_unique<BiasedBackend>(64, 4, false), kVocab, options());
  Outcome r = run(engine, 1, {1}, regex("a{10}", 4)).get();
  EXPECT_EQ(r.finish, FinishReason::kLength);
  EXPECT_EQ(r.text, "aaaa");
  engine.shutdown();
}

TEST(EngineConstrainedTest, PreemptedSequencesKeepTheirConstraint) {
  // 12 blocks of 4 positions for 4 sequences of up to 1 + 30 positions: recomputation preempts.
  // The gate holds the first step until all four are queued, so they run together.
  auto gate = std::make_shared<StepGate>();
  gate->closed = true;
  EngineOptions o = options(4);
  // Compiled first, so that every submit queues its request at once (no compile off-thread).
  ASSERT_TRUE(o.grammar_compiler->compile(regex("[a-c]{30}").constraint).has_value());
  Engine engine(std::make_unique<BiasedBackend>(12, 4, false, gate), kVocab, o);
  std::vector<std::future<Outcome>> runs;
  for (uint64_t id = 1; id <= 4; ++id)
    runs.push_back(run(engine, id, {1}, regex("[a-c]{30}", 40, id)));
  gate->open();
  for (auto& f : runs) {
    Outcome r = f.get();
    EXPECT_EQ(r.finish, FinishReason::kStop) << r.error.to_string();
    EXPECT_TRUE(std::regex_match(r.text, std::regex("[a-c]{30}"))) << r.text;
  }
  EXPECT_GT(engine.stats().preemptions, 0u);
  engine.shutdown();
}

TEST(EngineConstrainedTest, AMigratedRequestReplaysItsTokensAndContinues) {
  Engine engine(std::make_unique<BiasedBackend>(64, 4, false), kVocab, options());
  // The lost worker generated "ab" of "(ab){3}"; the new one gets prompt + "ab".
  SamplingParams p = regex("(ab){3}");
  p.constraint_replay = 2;
  Outcome r = run(engine, 1, {5, 6, id_of('a'), id_of('b')}, p).get();
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_EQ(r.text, "abab");
  // Tokens that do not match the constraint cannot be replayed.
  p.constraint_replay = 3;
  Status st;
  run(engine, 2, {id_of('z'), id_of('a'), id_of('b')}, p, &st).get();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("do not match"), std::string::npos) << st.message();
  engine.shutdown();
}

TEST(EngineConstrainedTest, BadConstraintsAreRefusedAtSubmit) {
  Engine engine(std::make_unique<BiasedBackend>(64, 4, false), kVocab, options());
  Status st;
  run(engine, 1, {1}, regex("(ab"), &st).get();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.field(), "constraint.regex");
  SamplingParams p = regex("a");
  p.constraint_replay = 5;  // longer than the prompt
  run(engine, 2, {1}, p, &st).get();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  engine.shutdown();

  // An engine without a compiler refuses constrained requests rather than ignoring them.
  EngineOptions o = options();
  o.grammar_compiler = nullptr;
  Engine plain(std::make_unique<BiasedBackend>(64, 4, false), kVocab, o);
  run(plain, 1, {1}, regex("a"), &st).get();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  plain.shutdown();
}

TEST(EngineConstrainedTest, DeviceSamplingGetsTheMaskThroughFillMask) {
  auto backend = std::make_unique<BiasedBackend>(64, 4, true);
  BiasedBackend* b = backend.get();
  Engine engine(std::move(backend), kVocab, options());
  // The fake device sampler picks EOS when allowed, else the highest allowed id.
  Outcome r = run(engine, 1, {1}, regex("[a-c]{2}x?")).get();
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_EQ(r.text, "cc");
  EXPECT_EQ(r.tokens.back(), kEos);
  EXPECT_EQ(b->masked_rows(), 3);
  engine.shutdown();
}

TEST(SamplerMaskTest, OnlyAllowedIdsAreDrawnAndLogprobsStayTheModels) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 7;
  p.n_logprobs = 3;
  std::vector<uint32_t> allowed(2, 0);
  allowed[0] = (1u << 3) | (1u << 17);
  allowed[1] = 1u << (40 - 32);
  Sampler s(p, {}, kVocab);
  for (int i = 0; i < 200; ++i) {
    std::vector<float> logits(kVocab, 0.0f);
    logits[0] = 50.0f;
    auto t = s.sample(logits, allowed);
    EXPECT_TRUE(t.token == 3 || t.token == 17 || t.token == 40) << t.token;
    EXPECT_TRUE(std::isfinite(t.logprob));
    ASSERT_EQ(t.top_logprobs.size(), 3u);
    EXPECT_EQ(t.top_logprobs[0].first, 0);  // the model's favourite, masked or not
  }
}

}  // namespace
}  // namespace turbine::engine

namespace turbine::engine {
namespace {

// Compile jobs held back until the test runs them: a compile that takes as long as the test
// wants, without timing.
struct ParkedCompiles {
  std::mutex mu;
  std::vector<std::function<void()>> jobs;
  std::function<void(std::function<void()>)> executor() {
    return [this](std::function<void()> job) {
      std::lock_guard lock(mu);
      jobs.push_back(std::move(job));
    };
  }
  size_t size() {
    std::lock_guard lock(mu);
    return jobs.size();
  }
  void run_all() {
    std::vector<std::function<void()>> take;
    {
      std::lock_guard lock(mu);
      take.swap(jobs);
    }
    for (auto& j : take) j();
  }
};

TEST(EngineConstrainedTest, AColdCompileDoesNotHoldUpTheSubmittingThread) {
  ParkedCompiles parked;
  EngineOptions o = options();
  o.compile_executor = parked.executor();
  Engine engine(std::make_unique<BiasedBackend>(64, 4, false), kVocab, o);
  // A warm constraint (compiled before) is matched at submit, as before.
  ASSERT_TRUE(o.grammar_compiler->compile(regex("(ab){2}").constraint).has_value());
  // The cold one is accepted at once; its compile waits in `parked`.
  std::future<Outcome> cold = run(engine, 1, {1, 2}, regex("[0-9]{4}"));
  ASSERT_EQ(parked.size(), 1u);
  // Meanwhile, on this same thread, an unconstrained and a warm request run to their end.
  SamplingParams free = regex("", 8);
  free.constraint = {};
  EXPECT_EQ(run(engine, 2, {1, 2}, free).get().tokens, std::vector<int32_t>{kEos});
  Outcome warm = run(engine, 3, {1, 2}, regex("(ab){2}")).get();
  EXPECT_EQ(warm.finish, FinishReason::kStop);
  EXPECT_EQ(warm.text, "abab");
  EXPECT_EQ(cold.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  // The compile ends: the request queues and runs under its constraint.
  parked.run_all();
  Outcome r = cold.get();
  EXPECT_EQ(r.finish, FinishReason::kStop) << r.error.to_string();
  EXPECT_TRUE(std::regex_match(r.text, std::regex("[0-9]{4}"))) << r.text;
  // Compiled now: the same spec is matched at submit, nothing is parked.
  EXPECT_EQ(run(engine, 4, {1, 2}, regex("[0-9]{4}")).get().finish, FinishReason::kStop);
  EXPECT_EQ(parked.size(), 0u);
  engine.shutdown();
}

TEST(EngineConstrainedTest, ACompileErrorCancelOrShutdownEndsTheCompilingRequest) {
  ParkedCompiles parked;
  EngineOptions o = options();
  o.compile_executor = parked.executor();
  auto engine = std::make_unique<Engine>(std::make_unique<BiasedBackend>(64, 4, false), kVocab, o);
  Status st;
  std::future<Outcome> bad = run(*engine, 1, {1}, regex("(ab"), &st);
  std::future<Outcome> cancelled = run(*engine, 2, {1}, regex("x{3}"));
  std::future<Outcome> stopped = run(*engine, 3, {1}, regex("y{3}"));
  engine->cancel(2);
  engine->stop(3);
  ASSERT_EQ(parked.size(), 3u);
  parked.run_all();
  EXPECT_EQ(bad.get().finish, FinishReason::kError);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);  // a 400 naming the field, as at submit
  EXPECT_EQ(st.field(), "constraint.regex");
  EXPECT_EQ(cancelled.get().finish, FinishReason::kCancelled);
  Outcome s = stopped.get();
  EXPECT_EQ(s.finish, FinishReason::kStop);
  EXPECT_TRUE(s.tokens.empty());
  // A compile still parked when the engine goes away ends its request without it.
  std::future<Outcome> orphan = run(*engine, 4, {1}, regex("z{3}"));
  engine->shutdown();
  engine.reset();
  parked.run_all();
  EXPECT_EQ(orphan.get().finish, FinishReason::kCancelled);
}

TEST(EngineConstrainedTest, TheEnginesOwnCompilePoolRunsColdCompiles) {
  EngineOptions o = options();
  o.compile_threads = 2;
  Engine engine(std::make_unique<BiasedBackend>(64, 4, false), kVocab, o);
  std::vector<std::future<Outcome>> runs;
  for (uint64_t id = 1; id <= 6; ++id)
    runs.push_back(run(engine, id, {1}, regex("[a-c]{" + std::to_string(id) + "}", 16, id)));
  for (uint64_t id = 1; id <= 6; ++id) {
    Outcome r = runs[id - 1].get();
    EXPECT_EQ(r.finish, FinishReason::kStop) << r.error.to_string();
    EXPECT_EQ(r.text.size(), id) << r.text;
  }
  engine.shutdown();
}

// Many constrained sequences in one step: the masks filled on a pool equal those filled on the
// engine thread alone (same seeds, so the same draws), on the host and the device paths.
std::vector<std::string> run_batch(bool device, int mask_threads) {
  auto gate = std::make_shared<StepGate>();
  gate->closed = true;
  EngineOptions o = options(16);
  o.mask_threads = mask_threads;
  Engine engine(std::make_unique<BiasedBackend>(256, 4, device, gate), kVocab, o);
  const char* patterns[] = {"[a-f]{6}", "(ab|cd)+x", "[0-9]{2,5}", R"(\{"k":[0-9]\})"};
  // Compiled first: every request is queued before the gate opens, so they share the steps.
  for (const char* p : patterns)
    EXPECT_TRUE(o.grammar_compiler->compile(regex(p).constraint).has_value());
  std::vector<std::future<Outcome>> runs;
  for (uint64_t id = 1; id <= 16; ++id)
    runs.push_back(run(engine, id, {1}, regex(patterns[id % 4], 24, id)));
  gate->open();
  std::vector<std::string> texts;
  for (auto& f : runs) {
    Outcome r = f.get();
    EXPECT_EQ(r.finish, FinishReason::kStop) << r.error.to_string();
    texts.push_back(r.text);
  }
  engine.shutdown();
  return texts;
}

TEST(EngineConstrainedTest, MasksFilledOnSeveralThreadsMatchOneThread) {
  for (bool device : {false, true}) {
    const std::vector<std::string> one = run_batch(device, 1);
    const std::vector<std::string> four = run_batch(device, 4);
    EXPECT_EQ(one, four) << (device ? "device" : "host");
    for (size_t i = 0; i < one.size(); ++i) {
      const char* patterns[] = {"[a-f]{6}", "(ab|cd)+x", "[0-9]{2,5}", R"(\{"k":[0-9]\})"};
      EXPECT_TRUE(std::regex_match(four[i], std::regex(patterns[(i + 1) % 4]))) << four[i];
    }
  }
}

}  // namespace
}  // namespace turbine::engine
