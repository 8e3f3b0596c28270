// Issue 20 through the generation stage (fake engine, fake writer): reasoning and tool-call
// parsers wired as text processors, n > 1 and best_of, and the Responses and Anthropic encoders.
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "api/response_store.h"
#include "frontend/anthropic_protocol.h"
#include "frontend/constraint_plan.h"
#include "frontend/output_parsers.h"
#include "frontend/responses_protocol.h"
#include "generation_fixture.h"

namespace turbine::frontend {
namespace {

namespace json = boost::json;
using testing::FakeEngine;
using testing::FakeTokenizer;
using testing::FakeWriter;
using testing::Loop;

// `event: NAME` / `data: JSON` pairs of a typed stream ("" for untyped data lines).
std::vector<std::pair<std::string, json::value>> events(const std::string& sse) {
  std::vector<std::pair<std::string, json::value>> out;
  size_t at = 0;
  std::string name;
  while (at < sse.size()) {
    const size_t eol = sse.find('\n', at);
    const std::string_view line = std::string_view(sse).substr(at, eol - at);
    if (line.starts_with("event: ")) name = std::string(line.substr(7));
    if (line.starts_with("data: ")) {
      const std::string_view d = line.substr(6);
      out.emplace_back(name, d == "[DONE]" ? json::value("[DONE]") : json::parse(d));
      name.clear();
    }
    at = eol + 1;
  }
  return out;
}

api::ToolSpec tool(std::string name) {
  api::ToolSpec t;
  t.name = std::move(name);
  t.parameters_json = R"({"type":"object","properties":{"x":{"type":"integer"}}})";
  return t;
}

class AgentsGenerationTest : public testing::GenerationFixture {
 protected:
  AgentsGenerationTest()
      : GenerationFixture(/*first_id=*/1, [](ModelEntry& m) {
          ModelParsers parsers;
          parsers.tool_format = parsers::ToolCallFormat::kHermes;
          parsers.reasoning_format = parsers::ReasoningFormat::kThink;
          m.text_processors = make_parser_factory(parsers);
        }) {}

  api::ChatRequest chat(bool stream, std::vector<api::ToolSpec> tools = {}) {
    api::ChatRequest r = chat_request(stream, /*max_tokens=*/16);
    r.extras.tools = std::move(tools);
    if (r.extras.tools.empty()) r.extras.tool_choice.mode = api::ToolChoice::Mode::kNone;
    return r;
  }

  void run(Generation g) { start(std::move(g)); }
  // The tokens of `text`, which the fake vocabulary must cover.
  std::vector<int32_t> toks(std::string_view text) const {
    std::vector<int32_t> t = tok_->encode(text, false);
    std::string covered;
    for (int32_t id : t) covered += tok_->token_bytes(id);
    EXPECT_EQ(covered, text);
    return t;
  }
  std::vector<int32_t> ids(std::initializer_list<std::string_view> pieces) const {
    std::vector<int32_t> out;
    for (std::string_view p : pieces) out.push_back(id(p));
    return out;
  }

  api::ResponseStore store_{api::ResponseStore::Options{}};
  std::unique_ptr<ProtocolAdapter> responses_ = make_responses_adapter(store_);
  std::unique_ptr<ProtocolAdapter> messages_ = make_anthropic_adapter();
};

TEST_F(AgentsGenerationTest, ReasoningIsSplitFromContentUnaryAndStreamed) {
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "stream" : "unary");
    writer_ = FakeWriter();
    const size_t first = engine_->submitted.size();
    run(generation(*chat_, chat(stream)));
    loop_.poll();
    engine_->emit(first, ids({"<think>", " a", " b"}));
    loop_.poll();
    engine_->emit(first, ids({"</think>", " Hello", " world"}));
    engine_->emit(first, {1}, engine::FinishReason::kStop);
    loop_.poll();
    ASSERT_TRUE(writer_.sent || writer_.ended);
    std::string reasoning, content;
    std::string finish;
    if (stream) {
      for (const auto& [name, d] : events(writer_.stream())) {
        if (!d.is_object()) continue;
        const json::value& delta = d.at("choices").at(0).at("delta");
        if (const auto* r = delta.as_object().if_contains("reasoning_content"))
          reasoning += r->as_string();
        if (const auto* c = delta.as_object().if_contains("content"))
          if (c->is_string()) content += c->as_string();
        const json::value& f = d.at("choices").at(0).at("finish_reason");
        if (f.is_string()) finish = f.as_string();
      }
    } else {
      const json::value body = json::parse(writer_.body);
      const json::value& msg = body.at("choices").at(0).at("message");
      reasoning = msg.at("reasoning_content").as_string();
      content = msg.at("content").as_string();
      finish = body.at("choices").at(0).at("finish_reason").as_string();
    }
    EXPECT_EQ(reasoning, " a b");       // the text between the tags (only newlines are trimmed)
    EXPECT_EQ(content, "Hello world");  // the answer starts after the tag's whitespace
    EXPECT_EQ(finish, "stop");
  }
}

TEST_F(AgentsGenerationTest, HermesCallsBecomeToolCallsWithIdsAndFinishToolCalls) {
  run(generation(*chat_, chat(false, {tool("f"), tool("g")})));
  loop_.poll();
  engine_->emit(0, toks(R"( Hello<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>)"
                        R"(<tool_call>{"name": "g", "arguments": {}}</tool_call>)"));
  engine_->emit(0, {1}, engine::FinishReason::kStop);
  loop_.poll();
  ASSERT_TRUE(loop_.done());
  const json::value body = json::parse(writer_.body);
  const json::value& choice = body.at("choices").at(0);
  EXPECT_EQ(choice.at("finish_reason").as_string(), "tool_calls");
  // The first piece after BOS loses its space (SentencePiece); whitespace before a call is dropped.
  EXPECT_EQ(choice.at("message").at("content").as_string(), "Hello");
  const json::array& calls = choice.at("message").at("tool_calls").as_array();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].at("type").as_string(), "function");
  EXPECT_TRUE(calls[0].at("id").as_string().starts_with("call_"));
  EXPECT_NE(calls[0].at("id"), calls[1].at("id"));
  EXPECT_EQ(calls[0].at("function").at("name").as_string(), "f");
  EXPECT_EQ(json::parse(calls[0].at("function").at("arguments").as_string()),
            json::parse(R"({"x": 1})"));
  EXPECT_EQ(calls[1].at("function").at("name").as_string(), "g");
}

TEST_F(AgentsGenerationTest, StreamedCallsUseOpenAisDeltaShapeAndParallelFalseKeepsOne) {
  api::ChatRequest r = chat(true, {tool("f"), tool("g")});
  r.extras.parallel_tool_calls = false;
  run(generation(*chat_, r));
  loop_.poll();
  for (int32_t t : toks(R"(<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>)"
                        R"(<tool_call>{"name": "g", "arguments": {}}</tool_call>)")) {
    engine_->emit(0, {t});
    loop_.poll();
  }
  engine_->emit(0, {1}, engine::FinishReason::kStop);
  loop_.poll();
  ASSERT_TRUE(writer_.ended);
  std::string arguments, finish;
  int openings = 0;
  for (const auto& [name, d] : events(writer_.stream())) {
    if (!d.is_object()) continue;
    const json::object& delta = d.at("choices").at(0).at("delta").as_object();
    EXPECT_FALSE(delta.contains("content") && delta.at("content").is_string() &&
                 !delta.at("content").as_string().empty())
        << "markup leaked into content: " << json::serialize(d);
    if (const auto* calls = delta.if_contains("tool_calls")) {
      for (const json::value& c : calls->as_array()) {
        EXPECT_EQ(c.at("index").as_int64(), 0);  // only the first call is kept
        if (c.as_object().contains("id")) {
          ++openings;
          EXPECT_EQ(c.at("type").as_string(), "function");
          EXPECT_EQ(c.at("function").at("name").as_string(), "f");
        } else {
          EXPECT_FALSE(c.at("function").as_object().contains("name"));
        }
        arguments += c.at("function").at("arguments").as_string();
      }
    }
    const json::value& f = d.at("choices").at(0).at("finish_reason");
    if (f.is_string()) finish = f.as_string();
  }
  EXPECT_EQ(openings, 1);
  EXPECT_EQ(json::parse(arguments), json::parse(R"({"x": 1})"));
  EXPECT_EQ(finish, "tool_calls");
}

TEST_F(AgentsGenerationTest, ToolChoiceNoneLeavesCallsAsContent) {
  api::ChatRequest r = chat(false, {tool("f")});
  r.extras.tool_choice.mode = api::ToolChoice::Mode::kNone;
  run(generation(*chat_, r));
  loop_.poll();
  engine_->emit(0, toks(R"(<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>)"),
                engine::FinishReason::kLength);
  loop_.poll();
  const json::value body = json::parse(writer_.body);
  EXPECT_EQ(body.at("choices").at(0).at("message").at("content").as_string(),
            R"(<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>)");
  EXPECT_EQ(body.at("choices").at(0).at("finish_reason").as_string(), "length");
}

TEST_F(AgentsGenerationTest, NChoicesShareAPromptGroupAndInterleave) {
  api::ChatRequest r = chat(true);
  r.sampling.n = 3;
  r.sampling.seed = 40;
  run(generation(*chat_, r));
  loop_.poll();
  ASSERT_EQ(engine_->submitted.size(), 3u);
  const uint64_t group = engine_->submitted[0].params.prompt_group;
  EXPECT_NE(group, 0u);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(engine_->submitted[k].params.prompt_group, group);
    EXPECT_EQ(engine_->submitted[k].params.seed, 40 + k);
    EXPECT_EQ(engine_->submitted[k].prompt, engine_->submitted[0].prompt);
  }
  engine_->emit(2, {id(" c")});
  engine_->emit(0, {id(" a")});
  loop_.poll();
  engine_->emit(1, {id(" b")}, engine::FinishReason::kLength);
  engine_->emit(0, {1}, engine::FinishReason::kStop);
  engine_->emit(2, {1}, engine::FinishReason::kStop);
  loop_.poll();
  ASSERT_TRUE(writer_.ended);
  std::vector<int64_t> order;
  std::map<int64_t, std::string> text;
  for (const auto& [name, d] : events(writer_.stream())) {
    if (!d.is_object() || d.at("choices").as_array().empty()) continue;
    const json::value& c = d.at("choices").at(0);
    const auto* content = c.at("delta").as_object().if_contains("content");
    if (content == nullptr || !content->is_string() || content->as_string().empty()) continue;
    order.push_back(c.at("index").as_int64());
    text[c.at("index").as_int64()] += content->as_string();
  }
  EXPECT_EQ(order, (std::vector<int64_t>{2, 0, 1}));  // as the engine produced them
  EXPECT_EQ(text[0], "a");                            // the first piece after BOS loses its space
  EXPECT_EQ(text[1], "b");
  EXPECT_EQ(text[2], "c");
}

TEST_F(AgentsGenerationTest, BestOfKeepsTheSequenceWithTheHighestCumulativeLogprob) {
  api::CompletionRequest r;
  r.model = "m";
  r.prompts.push_back({" Hello", {}, false});
  r.sampling.max_tokens = 8;
  r.sampling.best_of = 3;
  run(generation(*completions_, r));
  loop_.poll();
  ASSERT_EQ(engine_->submitted.size(), 3u);
  EXPECT_EQ(engine_->submitted[0].params.n_logprobs, 0);  // needed to rank them
  // The fake engine reports -0.5 per token: the shortest sequence is the most likely.
  engine_->emit(0, ids({" a", " b", " c"}), engine::FinishReason::kLength);
  engine_->emit(1, ids({" the"}), engine::FinishReason::kLength);
  engine_->emit(2, ids({" a", " end"}), engine::FinishReason::kLength);
  loop_.poll();
  ASSERT_TRUE(loop_.done());
  const json::value body = json::parse(writer_.body);
  const json::array& choices = body.at("choices").as_array();
  ASSERT_EQ(choices.size(), 1u);
  EXPECT_EQ(choices[0].at("index").as_int64(), 0);
  EXPECT_EQ(choices[0].at("text").as_string(), " the");
  EXPECT_TRUE(choices[0].at("logprobs").is_null());                   // not asked for
  EXPECT_EQ(body.at("usage").at("completion_tokens").as_int64(), 6);  // every sequence counts
}

TEST_F(AgentsGenerationTest, ResponsesStreamAndStoreForPreviousResponseId) {
  auto parsed =
      responses_->parse(R"({"model":"m","input":"hi","stream":true,"max_output_tokens":8})");
  ASSERT_TRUE(parsed.has_value()) << parsed.status().to_string();
  run(generation(*responses_, *parsed));
  loop_.poll();
  engine_->emit(0, ids({"<think>", " a", "</think>", " Hello"}));
  engine_->emit(0, {1}, engine::FinishReason::kStop);
  loop_.poll();
  ASSERT_TRUE(writer_.ended);
  std::vector<std::string> names;
  std::string id, text, reasoning;
  for (const auto& [name, d] : events(writer_.stream())) {
    names.push_back(name);
    EXPECT_EQ(d.at("type").as_string(), name);
    if (name == "response.created") id = d.at("response").at("id").as_string();
    if (name == "response.output_text.delta") text += d.at("delta").as_string();
    if (name == "response.reasoning_text.delta") reasoning += d.at("delta").as_string();
  }
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.front(), "response.created");
  EXPECT_EQ(names.back(), "response.completed");
  EXPECT_EQ(text, "Hello");
  EXPECT_EQ(reasoning, " a");
  ASSERT_TRUE(id.starts_with("resp_")) << id;
  const auto stored = store_.get(id);
  ASSERT_NE(stored, nullptr);
  EXPECT_EQ(json::parse(stored->response_json).at("status").as_string(), "completed");

  // The next turn continues the stored conversation.
  auto next =
      responses_->parse(R"({"model":"m","input":"again","previous_response_id":")" + id + R"("})");
  ASSERT_TRUE(next.has_value()) << next.status().to_string();
  const auto& msgs = std::get<api::ChatRequest>(*next).messages;
  ASSERT_GE(msgs.size(), 3u);
  EXPECT_EQ(msgs.front().content, "hi");
  EXPECT_EQ(msgs.back().content, "again");
  auto unknown = responses_->parse(R"({"model":"m","input":"x","previous_response_id":"resp_no"})");
  ASSERT_FALSE(unknown.has_value());
  const ErrorReply e = responses_->error(unknown.status());
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(json::parse(e.body).at("error").at("code").as_string(), "previous_response_not_found");
}

TEST_F(AgentsGenerationTest, AnthropicUnaryReportsToolUseAndStreamNamesTheStopSequence) {
  auto parsed =
      messages_->parse(R"({"model":"m","max_tokens":8,"messages":[{"role":"user","content":"hi"}],)"
                       R"("tools":[{"name":"f","input_schema":{"type":"object"}}]})");
  ASSERT_TRUE(parsed.has_value()) << parsed.status().to_string();
  run(generation(*messages_, *parsed));
  loop_.poll();
  engine_->emit(0, toks(R"(<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>)"));
  engine_->emit(0, {1}, engine::FinishReason::kStop);
  loop_.poll();
  ASSERT_TRUE(loop_.done());
  const json::value msg = json::parse(writer_.body);
  EXPECT_EQ(msg.at("type").as_string(), "message");
  EXPECT_EQ(msg.at("stop_reason").as_string(), "tool_use");
  const json::value& block = msg.at("content").at(0);
  EXPECT_EQ(block.at("type").as_string(), "tool_use");
  EXPECT_EQ(block.at("name").as_string(), "f");
  EXPECT_TRUE(block.at("id").as_string().starts_with("toolu_"));
  EXPECT_EQ(block.at("input"), json::parse(R"({"x": 1})"));
  EXPECT_GT(msg.at("usage").at("input_tokens").as_int64(), 0);

  writer_ = FakeWriter();
  Loop loop2;
  auto streamed =
      messages_->parse(R"({"model":"m","max_tokens":8,"stream":true,"stop_sequences":[" world"],)"
                       R"("messages":[{"role":"user","content":"hi"}]})");
  ASSERT_TRUE(streamed.has_value());
  loop2.spawn(run_generation(env_, generation(*messages_, *streamed), writer_));
  loop2.poll();
  engine_->emit(1, ids({" Hello", " world", " the"}));
  loop2.poll();
  ASSERT_TRUE(writer_.ended);
  std::vector<std::string> names;
  json::value message_delta;
  for (const auto& [name, d] : events(writer_.stream())) {
    names.push_back(name);
    if (name == "message_delta") message_delta = d;
    if (name == "message_start") {
      EXPECT_GT(d.at("message").at("usage").at("input_tokens").as_int64(), 0);
    }
  }
  ASSERT_GE(names.size(), 6u);
  EXPECT_EQ(names.front(), "message_start");
  EXPECT_EQ(names.back(), "message_stop");
  EXPECT_EQ(message_delta.at("delta").at("stop_reason").as_string(), "stop_sequence");
  EXPECT_EQ(message_delta.at("delta").at("stop_sequence").as_string(), " world");
}

TEST(ConstraintPlanTest, ToolChoiceBecomesASchemaAndAParsingForm) {
  api::ChatExtras x;
  x.tools = {tool("f"), api::ToolSpec{"g", "", "", false}};
  x.tool_choice.mode = api::ToolChoice::Mode::kRequired;
  x.parallel_tool_calls = false;
  ConstraintPlan p = plan_constraints(x);
  EXPECT_EQ(p.kind, ConstraintPlan::Kind::kJsonSchema);
  EXPECT_EQ(p.tool_form, ToolOutputForm::kJsonArray);
  const json::value schema = json::parse(p.schema);
  EXPECT_EQ(schema.at("type").as_string(), "array");
  EXPECT_EQ(schema.at("minItems").as_int64(), 1);
  EXPECT_EQ(schema.at("maxItems").as_int64(), 1);
  const json::array& any = schema.at("items").at("anyOf").as_array();
  ASSERT_EQ(any.size(), 2u);
  EXPECT_EQ(any[0].at("properties").at("name").at("const").as_string(), "f");
  EXPECT_EQ(any[0].at("properties").at("parameters"), json::parse(x.tools[0].parameters_json));
  EXPECT_EQ(any[1].at("properties").at("parameters"), json::parse(R"({"type":"object"})"));

  x.tool_choice = {api::ToolChoice::Mode::kFunction, "f"};
  p = plan_constraints(x);
  EXPECT_EQ(p.tool_form, ToolOutputForm::kArguments);
  EXPECT_EQ(p.function, "f");
  EXPECT_EQ(p.schema, x.tools[0].parameters_json);

  x.tool_choice.mode = api::ToolChoice::Mode::kAuto;
  EXPECT_FALSE(plan_constraints(x).active());
  x.output_format.type = api::OutputFormat::Type::kJsonObject;
  EXPECT_EQ(plan_constraints(x).kind, ConstraintPlan::Kind::kJsonObject);
}

// The plan reaches the engine as SamplingParams::constraint; the grammar front end refuses what
// the engine could not enforce.
TEST(ConstraintPlanTest, AttachesTheSpecAndChecksTheSchema) {
  api::ChatExtras x;
  x.tools = {tool("f")};
  x.tool_choice = {api::ToolChoice::Mode::kFunction, "f"};
  ConstraintPlan p = plan_constraints(x);
  EXPECT_TRUE(check_constraint(p, "tools").is_ok());
  engine::SamplingParams params;
  attach_constraint(p, params);
  EXPECT_EQ(params.constraint.kind, structured::ConstraintSpec::Kind::kJsonSchema);
  EXPECT_EQ(params.constraint.text, x.tools[0].parameters_json);

  x.tool_choice.mode = api::ToolChoice::Mode::kRequired;
  p = plan_constraints(x);
  EXPECT_TRUE(check_constraint(p, "tools").is_ok());
  attach_constraint(p, params);
  EXPECT_EQ(params.constraint.text, p.schema);

  // An output format does not replace a constraint set already (response_format); tools do.
  api::ChatExtras fmt;
  fmt.output_format.type = api::OutputFormat::Type::kJsonObject;
  engine::SamplingParams preset;
  preset.constraint = {structured::ConstraintSpec::Kind::kRegex, "a+"};
  attach_constraint(plan_constraints(fmt), preset);
  EXPECT_EQ(preset.constraint.kind, structured::ConstraintSpec::Kind::kRegex);
  attach_constraint(p, preset);
  EXPECT_EQ(preset.constraint.kind, structured::ConstraintSpec::Kind::kJsonSchema);
  engine::SamplingParams none;
  attach_constraint(plan_constraints(api::ChatExtras{}), none);
  EXPECT_FALSE(none.constraint.active());

  // A schema the grammar compiler cannot take is a 400 naming the field.
  ConstraintPlan bad;
  bad.kind = ConstraintPlan::Kind::kJsonSchema;
  bad.schema = R"({"type":"object","properties":{"a":{"type":"nonsense"}}})";
  const Status st = check_constraint(bad, "tools");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.field(), "tools") << st.message();
}

// The forms a constraint enforces are parsed without the model's markup.
TEST_F(AgentsGenerationTest, ConstrainedFormsParseAsCalls) {
  for (ToolOutputForm form : {ToolOutputForm::kJsonArray, ToolOutputForm::kArguments}) {
    api::ChatExtras x;
    x.tools = {tool("f")};
    x.tool_choice = form == ToolOutputForm::kArguments
                        ? api::ToolChoice{api::ToolChoice::Mode::kFunction, "f"}
                        : api::ToolChoice{api::ToolChoice::Mode::kRequired, ""};
    TextProcessorContext ctx{true, "", "", &x, form};
    auto processors = model_->text_processors(ctx);
    ASSERT_EQ(processors.size(), 1u);
    api::ChoiceDelta d;
    d.finish = api::FinishReason::kStop;
    processors[0]->push(form == ToolOutputForm::kArguments
                            ? std::string(R"({"x": 1})")
                            : std::string(R"([{"name": "f", "parameters": {"x": 1}}])"),
                        d);
    processors[0]->flush(d);
    ChoiceOutput o;
    o.add(d);
    EXPECT_EQ(o.content, "");
    ASSERT_EQ(o.tool_calls.size(), 1u);
    EXPECT_EQ(o.tool_calls[0].name, "f");
    EXPECT_EQ(json::parse(o.tool_calls[0].arguments), json::parse(R"({"x": 1})"));
    EXPECT_EQ(o.finish, api::FinishReason::kToolCalls);
  }
}

}  // namespace
}  // namespace turbine::frontend

namespace turbine::frontend {
namespace {

// The fake vocabulary with <think> and </think> as special tokens (as some tokenizers mark them).
class SpecialThinkTokenizer final : public tokenizer::Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view t, bool s) const override { return in.encode(t, s); }
  std::string token_bytes(int32_t id) const override { return in.token_bytes(id); }
  std::string decode(const std::vector<int32_t>& ids, bool s) const override {
    return in.decode(ids, s);
  }
  int32_t vocab_size() const override { return in.vocab_size(); }
  int32_t bos_id() const override { return in.bos_id(); }
  int32_t eos_id() const override { return in.eos_id(); }
  bool is_special(int32_t id) const override {
    return in.is_special(id) || in.piece(id) == "<think>" || in.piece(id) == "</think>";
  }
  std::string piece(int32_t id) const override { return in.piece(id); }
  FakeTokenizer in;
};

TEST(MarkupTokensTest, ActiveParsersKeepTheirSpecialMarkupInTheText) {
  SpecialThinkTokenizer tok;
  const int32_t open = tok.in.id("<think>"), close = tok.in.id("</think>");
  EXPECT_EQ(
      markup_token_ids(parsers::ToolCallFormat::kHermes, parsers::ReasoningFormat::kThink, tok),
      (std::vector<int32_t>{open, close}));  // <tool_call> is not special here
  EXPECT_TRUE(markup_token_ids(parsers::ToolCallFormat::kJson, parsers::ReasoningFormat::kNone, tok)
                  .empty());
  const std::vector<int32_t> out = {open, tok.in.id(" a"), close, tok.in.id(" b")};
  auto text = [&](std::vector<int32_t> keep) {
    tokenizer::IncrementalDetokenizer d(tok, 5, {}, /*skip_special=*/true, std::move(keep));
    std::string s;
    for (int32_t t : out) s += d.push(t).text;
    return s + d.flush();
  };
  EXPECT_EQ(text({}), " a b");
  EXPECT_EQ(text({open, close}), "<think> a</think> b");
}

}  // namespace
}  // namespace turbine::frontend
