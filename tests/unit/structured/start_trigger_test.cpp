// Constraints that start after the reasoning (StartTrigger, issue 20): before the trigger every id
// is allowed and nothing advances the grammar; the trigger's own tokens are free; the grammar
// starts from its initial state at the next token. A trigger split over two tokens matches as a
// sequence; an optional opening marker; replay and rollback across the trigger.
#include <gtest/gtest.h>

#include "structured/json_schema.h"
#include "structured/regex.h"
#include "test_util.h"

namespace turbine::structured {
namespace {

using test_util::allowed_ids;
using test_util::byte_vocab;
using test_util::compile_or_die;
using test_util::mask_disagreements;

// byte_vocab(kExtra): id 0 stop, 1..256 bytes, then these.
const std::vector<std::string> kExtra = {"<think>", "</think>", "</", "think>"};
constexpr int32_t kOpen = 257;
constexpr int32_t kClose = 258;
constexpr int32_t kClosePart1 = 259;  // "</"
constexpr int32_t kClosePart2 = 260;  // "think>"

int32_t byte_id(char c) {
  return 1 + static_cast<uint8_t>(c);
}

std::vector<int32_t> ids_of(const std::string& s) {
  std::vector<int32_t> out;
  for (char c : s) out.push_back(byte_id(c));
  return out;
}

std::vector<int32_t> mask_of(Matcher& m) {
  std::vector<uint32_t> words(m.mask_words());
  m.fill_next_token_bitmask(words.data());
  return allowed_ids(words, static_cast<int32_t>(words.size() * 32));
}

std::vector<int32_t> reference_mask_of(Matcher& m) {
  std::vector<uint32_t> words(m.mask_words());
  m.fill_next_token_bitmask_reference(words.data());
  return allowed_ids(words, static_cast<int32_t>(words.size() * 32));
}

std::vector<int32_t> every_id(const Vocabulary& v) {
  std::vector<int32_t> out;
  for (int32_t id = 0; id < v.size(); ++id) out.push_back(id);
  return out;
}

struct Fixture {
  std::shared_ptr<const Vocabulary> vocab = byte_vocab(kExtra);
  std::shared_ptr<const CompiledGrammar> grammar =
      compile_or_die(regex_to_grammar("ab+", CompileLimits{}), vocab);
  // The grammar's own first mask, without a trigger.
  std::vector<int32_t> initial() {
    Matcher plain(grammar);
    return mask_of(plain);
  }
  void expect_consistent(Matcher& m) {
    std::string first;
    EXPECT_EQ(mask_disagreements(m, *vocab, &first), 0u) << first;
  }
};

TEST(StartTriggerTest, WithoutATriggerTheGrammarAppliesFromTheFirstToken) {
  Fixture f;
  Matcher m(f.grammar, StartTrigger{});
  EXPECT_EQ(m.phase(), Matcher::Phase::kGrammar);
  EXPECT_TRUE(m.masks_next());
  EXPECT_EQ(mask_of(m), std::vector<int32_t>{byte_id('a')});
  EXPECT_FALSE(m.accept_token(kClose));
}

TEST(StartTriggerTest, EverythingIsAllowedUntilTheTriggerThenOnlyTheGrammar) {
  Fixture f;
  Matcher m(f.grammar, StartTrigger{.end = {kClose}});
  EXPECT_EQ(m.phase(), Matcher::Phase::kReasoning);
  EXPECT_FALSE(m.masks_next());
  EXPECT_EQ(mask_of(m), every_id(*f.vocab));
  EXPECT_EQ(reference_mask_of(m), every_id(*f.vocab));
  EXPECT_TRUE(m.can_terminate());  // EOS as without a constraint
  EXPECT_FALSE(m.is_terminated());
  f.expect_consistent(m);
  // Reasoning that spells the grammar's own output advances nothing.
  for (int32_t id : ids_of("x abbb z")) ASSERT_TRUE(m.accept_token(id));
  EXPECT_EQ(m.phase(), Matcher::Phase::kReasoning);
  EXPECT_EQ(mask_of(m), every_id(*f.vocab));
  // The trigger itself is free; the grammar starts at the next token from its initial state.
  ASSERT_TRUE(m.accept_token(kClose));
  EXPECT_EQ(m.phase(), Matcher::Phase::kGrammar);
  EXPECT_TRUE(m.masks_next());
  EXPECT_EQ(mask_of(m), f.initial());
  EXPECT_EQ(reference_mask_of(m), f.initial());
  EXPECT_FALSE(m.can_terminate());
  f.expect_consistent(m);
  EXPECT_FALSE(m.accept_token(byte_id('x')));
  EXPECT_FALSE(m.accept_token(kClose));  // a second marker is grammar input now: refused
  ASSERT_TRUE(m.accept_token(byte_id('a')));
  ASSERT_TRUE(m.accept_token(byte_id('b')));
  EXPECT_TRUE(m.can_terminate());
  EXPECT_EQ(m.num_accepted(), 8u + 1u + 2u);
  EXPECT_EQ(m.min_completion_bytes(), 0);
}

TEST(StartTriggerTest, ATriggerOfTwoTokensMatchesAsASequence) {
  Fixture f;
  Matcher m(f.grammar, StartTrigger{.end = {kClosePart1, kClosePart2}});
  ASSERT_TRUE(m.accept_token(kClosePart1));
  EXPECT_EQ(m.phase(), Matcher::Phase::kReasoning);  // half a marker
  ASSERT_TRUE(m.accept_token(byte_id('x')));
  ASSERT_TRUE(m.accept_token(kClosePart2));
  EXPECT_EQ(m.phase(), Matcher::Phase::kReasoning);  // not adjacent
  ASSERT_TRUE(m.accept_token(kClosePart2));
  ASSERT_TRUE(m.accept_token(kClosePart1));
  ASSERT_TRUE(m.accept_token(kClosePart1));  // a repeated first half still matches after
  ASSERT_TRUE(m.accept_token(kClosePart2));
  EXPECT_EQ(m.phase(), Matcher::Phase::kGrammar);
  EXPECT_EQ(mask_of(m), f.initial());
  // The single-token spelling of the same text is not this trigger.
  Matcher other(f.grammar, StartTrigger{.end = {kClosePart1, kClosePart2}});
  ASSERT_TRUE(other.accept_token(kClose));
  EXPECT_EQ(other.phase(), Matcher::Phase::kReasoning);
}

TEST(StartTriggerTest, TheOutputMayOpenABlockOrStartTheGrammarAtOnce) {
  Fixture f;
  const StartTrigger trigger{.end = {kClose}, .open = {kOpen}};
  Matcher m(f.grammar, trigger);
  EXPECT_EQ(m.phase(), Matcher::Phase::kMayOpen);
  EXPECT_TRUE(m.masks_next());
  std::vector<int32_t> first = f.initial();
  first.push_back(kOpen);
  EXPECT_EQ(mask_of(m), first);
  EXPECT_EQ(reference_mask_of(m), first);
  f.expect_consistent(m);
  // Opened: free until the end marker.
  ASSERT_TRUE(m.accept_token(kOpen));
  EXPECT_EQ(m.phase(), Matcher::Phase::kReasoning);
  EXPECT_EQ(mask_of(m), every_id(*f.vocab));
  ASSERT_TRUE(m.accept_token(byte_id('q')));
  ASSERT_TRUE(m.accept_token(kClose));
  EXPECT_EQ(m.phase(), Matcher::Phase::kGrammar);
  EXPECT_EQ(mask_of(m), f.initial());

  // Declined: the first token is the grammar's, and no block can open later.
  Matcher d(f.grammar, trigger);
  ASSERT_TRUE(d.accept_token(byte_id('a')));
  EXPECT_EQ(d.phase(), Matcher::Phase::kGrammar);
  EXPECT_EQ(mask_of(d), std::vector<int32_t>{byte_id('b')});
  EXPECT_FALSE(d.accept_token(kOpen));
  // Rolled back to nothing, it may open again.
  ASSERT_TRUE(d.rollback(1));
  EXPECT_EQ(d.phase(), Matcher::Phase::kMayOpen);
  EXPECT_EQ(mask_of(d), first);
  // Anything else is refused at the first token.
  EXPECT_FALSE(d.accept_token(byte_id('x')));
  EXPECT_FALSE(d.accept_token(kClose));
}

TEST(StartTriggerTest, AnOpeningMarkerOfTwoTokensIsFollowedThrough) {
  Fixture f;
  Matcher m(f.grammar, StartTrigger{.end = {kClose}, .open = {kClosePart1, kClosePart2}});
  ASSERT_TRUE(m.accept_token(kClosePart1));
  EXPECT_EQ(m.phase(), Matcher::Phase::kOpening);
  EXPECT_EQ(mask_of(m), std::vector<int32_t>{kClosePart2});
  EXPECT_FALSE(m.can_terminate());
  f.expect_consistent(m);
  EXPECT_FALSE(m.accept_token(byte_id('a')));
  ASSERT_TRUE(m.accept_token(kClosePart2));
  EXPECT_EQ(m.phase(), Matcher::Phase::kReasoning);
  ASSERT_TRUE(m.accept_token(kClose));  // the end right after the opening
  EXPECT_EQ(m.phase(), Matcher::Phase::kGrammar);
}

TEST(StartTriggerTest, ReplayAndRollbackCrossTheTrigger) {
  Fixture f;
  const StartTrigger trigger{.end = {kClosePart1, kClosePart2}, .open = {kOpen}};
  std::vector<int32_t> generated = {kOpen};
  for (int32_t id : ids_of("think a")) generated.push_back(id);
  generated.push_back(kClosePart1);
  generated.push_back(kClosePart2);
  for (int32_t id : ids_of("abb")) generated.push_back(id);

  // A migrated request replays everything generated so far, the reasoning included.
  Matcher replayed(f.grammar, trigger);
  ASSERT_TRUE(replayed.accept_tokens(generated).is_ok());
  EXPECT_EQ(replayed.num_accepted(), generated.size());
  EXPECT_EQ(replayed.phase(), Matcher::Phase::kGrammar);
  EXPECT_TRUE(replayed.can_terminate());
  EXPECT_EQ(mask_of(replayed), (std::vector<int32_t>{0, byte_id('b')}));

  // Replays that stop before, inside and right after the trigger.
  for (size_t n = 0; n <= generated.size(); ++n) {
    Matcher m(f.grammar, trigger);
    ASSERT_TRUE(m.accept_tokens(std::span<const int32_t>(generated).first(n)).is_ok()) << n;
    const size_t after_trigger = 1 + 7 + 2;
    EXPECT_EQ(m.phase() == Matcher::Phase::kGrammar, n >= after_trigger) << n;
    // Rolling the full replay back to n tokens gives the same state.
    Matcher r(f.grammar, trigger);
    ASSERT_TRUE(r.accept_tokens(generated).is_ok());
    ASSERT_TRUE(r.rollback(generated.size() - n));
    EXPECT_EQ(r.phase(), m.phase()) << n;
    EXPECT_EQ(mask_of(r), mask_of(m)) << n;
    EXPECT_EQ(r.num_accepted(), n);
  }

  // Tokens after the trigger that break the grammar are refused, naming their position.
  std::vector<int32_t> bad = generated;
  bad.push_back(byte_id('x'));
  Matcher m(f.grammar, trigger);
  Status st = m.accept_tokens(bad);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("position " + std::to_string(generated.size())), std::string::npos)
      << st.message();
  // reset() goes back before the reasoning.
  m.reset();
  EXPECT_EQ(m.phase(), Matcher::Phase::kMayOpen);
  EXPECT_EQ(m.num_accepted(), 0u);
}

TEST(StartTriggerTest, AJsonSchemaStartsAfterTheReasoning) {
  auto vocab = byte_vocab(kExtra);
  auto g = compile_or_die(
      json_schema_to_grammar(R"({"type":"object","properties":{"n":{"type":"integer"}},
                                 "required":["n"],"additionalProperties":false})",
                             JsonGrammarOptions{}, CompileLimits{}),
      vocab);
  ASSERT_NE(g, nullptr);
  Matcher m(g, StartTrigger{.end = {kClose}});
  for (int32_t id : ids_of("Let me think: {\"n\": maybe}")) ASSERT_TRUE(m.accept_token(id));
  ASSERT_TRUE(m.accept_token(kClose));
  EXPECT_GT(m.min_completion_bytes(), 0);
  for (int32_t id : ids_of("{\"n\":42}")) ASSERT_TRUE(m.accept_token(id)) << id;
  EXPECT_TRUE(m.can_terminate());
  EXPECT_TRUE(m.accept_token(0));
  EXPECT_TRUE(m.is_terminated());
}

TEST(StartTriggerTest, TriggersAreCheckedAgainstTheVocabulary) {
  auto vocab = byte_vocab(kExtra);
  EXPECT_TRUE(check_start_trigger({}, *vocab).is_ok());
  EXPECT_TRUE(check_start_trigger({.end = {kClose}, .open = {kOpen}}, *vocab).is_ok());
  EXPECT_EQ(check_start_trigger({.end = {vocab->size()}}, *vocab).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(check_start_trigger({.end = {-1}}, *vocab).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(check_start_trigger({.end = {}, .open = {kOpen}}, *vocab).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      check_start_trigger({.end = std::vector<int32_t>(kMaxTriggerIds + 1, kClose)}, *vocab).code(),
      StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace turbine::structured
