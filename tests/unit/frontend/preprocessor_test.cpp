#include "frontend/preprocessor.h"

#include <gtest/gtest.h>

#include "fakes.h"

namespace turbine::frontend {
namespace {

using testing::FakeEngine;
using testing::FakeTokenizer;

ModelEntry model(int context = 64) {
  ModelEntry m;
  m.name = "m";
  auto tok = std::make_shared<FakeTokenizer>();
  m.max_token_bytes = longest_token_bytes(*tok);
  m.tokenizer = tok;
  auto engine = std::make_shared<FakeEngine>();
  engine->context = context;
  m.engine = engine;
  m.max_context = context;
  return m;
}

api::ChatRequest chat(std::string text) {
  api::ChatRequest r;
  r.model = "m";
  api::ChatMessage msg;
  msg.role = "user";
  msg.content = std::move(text);
  r.messages.push_back(msg);
  return r;
}

api::CompletionRequest completion(std::vector<std::string> prompts) {
  api::CompletionRequest r;
  r.model = "m";
  for (auto& p : prompts) r.prompts.push_back({std::move(p), {}, false});
  return r;
}

TEST(PreprocessorTest, ConstraintsAreCompiledAndBadOnesAre400sNamingTheField) {
  ModelEntry m = model();
  m.grammar_compiler = make_grammar_compiler(*m.tokenizer, m.tokenizer->vocab_size());
  ASSERT_NE(m.grammar_compiler, nullptr);
  api::CompletionRequest r = completion({"a", "b"});
  r.sampling.constraint = {api::OutputConstraint::Kind::kRegex, "[a-z]+", "guided_regex"};
  auto p = Preprocessor().prepare(r, m, "prompt");
  ASSERT_TRUE(p.has_value()) << p.status().to_string();
  ASSERT_EQ(p->choices.size(), 2u);
  for (const PreparedChoice& c : p->choices) {
    EXPECT_EQ(c.params.constraint.kind, structured::ConstraintSpec::Kind::kRegex);
    EXPECT_EQ(c.params.constraint.text, "[a-z]+");
  }
  EXPECT_EQ(m.grammar_compiler->stats().misses, 1u);
  // Bad constraints: the compiler's message, the request's field.
  const std::pair<api::OutputConstraint, std::string> bad[] = {
      {{api::OutputConstraint::Kind::kRegex, "(ab", "guided_regex"}, "guided_regex"},
      {{api::OutputConstraint::Kind::kJsonSchema, R"({"type":"banana"})", "response_format"},
       "banana"},
      {{api::OutputConstraint::Kind::kJsonSchema, R"({"type":"string","not":{}})",
        "structured_outputs.json"},
       "not"},
      {{api::OutputConstraint::Kind::kGrammar, "start ::= \"a\"", "guided_grammar"}, "root"},
      {{api::OutputConstraint::Kind::kRegex, std::string(300 * 1024, 'a'), "guided_regex"}, ""},
  };
  for (const auto& [c, words] : bad) {
    api::ChatRequest cr = chat("hi");
    cr.sampling.constraint = c;
    auto q = Preprocessor().prepare(cr, m, "messages");
    ASSERT_FALSE(q.has_value()) << c.text.substr(0, 40);
    EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(q.status().field(), c.param);
    EXPECT_EQ(q.status().message().rfind(c.param + ": ", 0), 0u) << q.status().message();
    EXPECT_NE(q.status().message().find(words), std::string::npos) << q.status().message();
  }
  // A model without a compiler refuses rather than ignoring the constraint.
  m.grammar_compiler = nullptr;
  r.sampling.constraint = {api::OutputConstraint::Kind::kJsonObject, "", "response_format"};
  auto none = Preprocessor().prepare(r, m, "prompt");
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.status().field(), "response_format");
}

// Issue 20: on a reasoning model a chat request's constraint starts after the reasoning block
// (structured::StartTrigger), unless the prompt closed it; completions are never deferred.
TEST(PreprocessorTest, AReasoningModelsConstraintStartsAfterTheReasoning) {
  ModelEntry m = model();
  m.grammar_compiler = make_grammar_compiler(*m.tokenizer, m.tokenizer->vocab_size());
  ASSERT_NE(m.grammar_compiler, nullptr);
  // FakeTokenizer: "<think>" is id 14, "</think>" id 15.
  m.reasoning = reasoning_markup(parsers::ReasoningFormat::kThink, *m.tokenizer);
  ASSERT_TRUE(m.reasoning.active());
  EXPECT_EQ(m.reasoning.open, std::vector<int32_t>{14});
  EXPECT_EQ(m.reasoning.close, std::vector<int32_t>{15});
  EXPECT_FALSE(reasoning_markup(parsers::ReasoningFormat::kNone, *m.tokenizer).active());

  // The decision from the rendered prompt.
  const structured::StartTrigger may_open{.end = {15}, .open = {14}};
  const structured::StartTrigger inside{.end = {15}};
  EXPECT_EQ(constraint_start("user: hi\nassistant:", m.reasoning), may_open);
  EXPECT_EQ(constraint_start("user: hi\nassistant: <think>\n", m.reasoning), inside);
  EXPECT_EQ(constraint_start("assistant:\n<think>\n\n</think>\n\n", m.reasoning),
            structured::StartTrigger{});
  // An earlier turn's closed block does not close this one.
  EXPECT_EQ(constraint_start("<think>a</think>b\nuser: hi\nassistant:", m.reasoning), may_open);
  EXPECT_EQ(constraint_start("assistant: <think>\n", ReasoningMarkup{}),
            structured::StartTrigger{});

  const auto start_of = [&](const ParsedRequest& r) {
    auto p = Preprocessor().prepare(r, m, "messages");
    EXPECT_TRUE(p.has_value()) << p.status().to_string();
    EXPECT_EQ(p->choices.size(), 1u);
    EXPECT_EQ(p->choices[0].params.constraint.kind, structured::ConstraintSpec::Kind::kJsonObject);
    return p->choices[0].params.constraint.start;
  };
  api::ChatRequest r = chat("hi");
  r.sampling.constraint = {api::OutputConstraint::Kind::kJsonObject, "", "response_format"};
  EXPECT_EQ(start_of(r), may_open);  // the fallback template ends "assistant:"
  r.template_fields.chat_template = "{{ messages[0].content }}<think>\n";
  EXPECT_EQ(start_of(r), inside);
  r.template_fields.chat_template = "{{ messages[0].content }}<think>\n\n</think>\n\n";
  EXPECT_EQ(start_of(r), structured::StartTrigger{});
  api::CompletionRequest c = completion({"a"});
  c.sampling.constraint = r.sampling.constraint;
  EXPECT_EQ(start_of(c), structured::StartTrigger{});
  // Unconstrained requests get no trigger.
  r.sampling.constraint = {};
  auto p = Preprocessor().prepare(r, m, "messages");
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(p->choices[0].params.constraint.start.active());
}

TEST(PreprocessorTest, LongestTokenBytes) {
  FakeTokenizer tok;
  EXPECT_EQ(longest_token_bytes(tok), std::string(" very-long-token-of-24b").size());
}

TEST(PreprocessorTest, ChatRendersTokenizesAndFillsParams) {
  const ModelEntry m = model();
  api::ChatRequest r = chat(" Hello world");
  r.sampling.temperature = 0.5f;
  r.sampling.stop = {"!"};
  r.sampling.logprobs = 2;
  r.sampling.min_tokens = 1;
  auto p = Preprocessor().prepare(r, m, "messages");
  ASSERT_TRUE(p.has_value()) << p.status().to_string();
  EXPECT_TRUE(p->chat);
  // The fallback template: "user:  Hello world\nassistant:" tokenized with BOS.
  EXPECT_EQ(p->prompt_text, "user:  Hello world\nassistant:");
  ASSERT_EQ(p->choices.size(), 1u);
  const PreparedChoice& c = p->choices[0];
  EXPECT_EQ(c.index, 0);
  ASSERT_FALSE(c.prompt->empty());
  EXPECT_EQ(c.prompt->front(), 0);  // BOS
  EXPECT_EQ(c.params.temperature, 0.5f);
  EXPECT_EQ(c.params.n_logprobs, 2);
  EXPECT_EQ(c.params.min_tokens, 1);
  // Chat without max_tokens: the rest of the context.
  EXPECT_EQ(c.params.max_tokens, 64 - static_cast<int>(c.prompt->size()));
  EXPECT_EQ(p->sampling.stop, (std::vector<std::string>{"!"}));
}

TEST(PreprocessorTest, CompletionBatchAndEcho) {
  const ModelEntry m = model();
  api::CompletionRequest r = completion({" a b", " c"});
  r.sampling.echo = true;
  r.prompts.push_back({{}, {2, 3}, true});
  auto p = Preprocessor({.default_completion_max_tokens = 7}).prepare(r, m, "prompt");
  ASSERT_TRUE(p.has_value()) << p.status().to_string();
  ASSERT_EQ(p->choices.size(), 3u);
  EXPECT_EQ(p->choices[0].echo, " a b");
  EXPECT_EQ(*p->choices[1].prompt, (std::vector<int32_t>{0, 8}));
  EXPECT_EQ(p->choices[2].echo, "Hello world");  // token prompts echo their decoded text
  EXPECT_EQ(p->choices[2].index, 2);
  EXPECT_EQ(p->choices[0].params.max_tokens, 7);
}

TEST(PreprocessorTest, NChoicesPerPromptWithDistinctSeeds) {
  const ModelEntry m = model();
  api::CompletionRequest r = completion({" a", " b"});
  r.sampling.n = 3;
  r.sampling.seed = 10;
  auto p = Preprocessor().prepare(r, m, "prompt");
  ASSERT_TRUE(p.has_value());
  ASSERT_EQ(p->choices.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(p->choices[static_cast<size_t>(i)].index, i);
  EXPECT_EQ(*p->choices[3].prompt, (std::vector<int32_t>{0, 7}));  // prompt 1, choice 0
  EXPECT_EQ(p->choices[3].params.seed, 10u);
  EXPECT_EQ(p->choices[4].params.seed, 11u);
  EXPECT_EQ(p->choices[5].params.seed, 12u);
  EXPECT_EQ(p->choices[0].prompt, p->choices[2].prompt);  // shared, not copied
}

TEST(PreprocessorTest, LengthErrorsNameTheField) {
  const ModelEntry m = model(8);
  api::CompletionRequest r = completion({" a b c a b c a b c"});
  auto p = Preprocessor().prepare(r, m, "prompt");
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.status().field(), "prompt");
  EXPECT_NE(p.status().message().find("maximum context length is 8"), std::string::npos);

  api::CompletionRequest big = completion({" a"});
  big.sampling.max_tokens = 100;
  auto q = Preprocessor().prepare(big, m, "prompt");
  ASSERT_FALSE(q.has_value());
  EXPECT_EQ(q.status().field(), "max_tokens");

  api::CompletionRequest mins = completion({" a"});
  mins.sampling.min_tokens = 7;  // 8 - 2 prompt tokens = 6 left
  auto s = Preprocessor().prepare(mins, m, "prompt");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.status().field(), "min_tokens");

  api::CompletionRequest empty;
  empty.model = "m";
  empty.prompts.push_back({{}, {}, true});
  EXPECT_FALSE(Preprocessor().prepare(empty, m, "prompt").has_value());
}

// A tokenizer that counts its encode() calls, to show the bound refuses text without one.
class CountingTokenizer final : public tokenizer::Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, bool add) const override {
    ++calls;
    return inner.encode(text, add);
  }
  std::string token_bytes(int32_t id) const override { return inner.token_bytes(id); }
  std::string decode(const std::vector<int32_t>& ids, bool s) const override {
    return inner.decode(ids, s);
  }
  int32_t vocab_size() const override { return inner.vocab_size(); }
  int32_t bos_id() const override { return 0; }
  int32_t eos_id() const override { return 1; }
  bool is_special(int32_t id) const override { return inner.is_special(id); }
  std::string piece(int32_t id) const override { return inner.piece(id); }
  FakeTokenizer inner;
  mutable int calls = 0;
};

TEST(PreprocessorTest, TextThatCannotFitIsRefusedBeforeTokenizing) {
  ModelEntry m = model(64);
  auto tok = std::make_shared<CountingTokenizer>();
  m.tokenizer = tok;
  m.max_token_bytes = 24;
  // 64 tokens * 24 bytes * 4 = 6144 bytes can still fit; 6144 + 96 bytes cannot.
  const std::string fits(64 * 24 * 4 - 1, 'x');
  const std::string huge(64 * 24 * 4 + 96, 'x');
  EXPECT_TRUE(Preprocessor::check_text_bound(fits.size(), m, false, "prompt").is_ok());
  auto p = Preprocessor().prepare(completion({" a", huge}), m, "prompt");
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().field(), "prompt");
  EXPECT_NE(p.status().message().find("at least 65 tokens"), std::string::npos)
      << p.status().message();
  EXPECT_EQ(tok->calls, 0);  // not even the short prompt before it was tokenized

  auto c = Preprocessor().prepare(chat(huge), m, "messages");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.status().field(), "messages");
  EXPECT_NE(c.status().message().find("messages resulted in at least"), std::string::npos);
  EXPECT_EQ(tok->calls, 0);
}

TEST(PreprocessorTest, TemplateErrorsAre400s) {
  const ModelEntry m = model();
  api::ChatRequest r = chat("hi");
  r.template_fields.chat_template = "{{ raise_exception('no system role') }}";
  auto p = Preprocessor().prepare(r, m, "messages");
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace turbine::frontend
