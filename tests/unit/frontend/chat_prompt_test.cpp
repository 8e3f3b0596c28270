#include "frontend/chat_prompt.h"

#include <gtest/gtest.h>

namespace turbine::frontend {
namespace {

std::vector<api::ChatMessage> user(std::string text) {
  api::ChatMessage m;
  m.role = "user";
  m.content = std::move(text);
  return {m};
}

ChatPrompt with_template(std::string_view source) {
  auto parsed = chat::ChatTemplate::parse(source);
  EXPECT_TRUE(parsed.has_value()) << parsed.status().to_string();
  return ChatPrompt(std::make_shared<const chat::ChatTemplate>(std::move(*parsed)), "<s>", "</s>");
}

TEST(ChatPromptTest, RequestTemplateOverridesTheModels) {
  const ChatPrompt fallback;
  api::ChatTemplateFields fields;
  fields.chat_template =
      "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}"
      "{% endfor %}{% if add_generation_prompt %}>{% endif %}";
  auto r = fallback.render(user("hi"), true, fields);
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  // The fallback prompt has no bos string; the template writes BOS, so none is added.
  EXPECT_EQ(r->text, "[user] hi>");
  EXPECT_FALSE(r->add_special_tokens);

  const ChatPrompt model = with_template("model:{{ messages[0].content }}");
  auto m = model.render(user("x"), false);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->text, "model:x");
  auto o = model.render(user("x"), false, fields);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->text, "<s>[user] x");  // the model's bos_token still applies

  fields.chat_template = "{% if %}";
  auto bad = model.render(user("x"), false, fields);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().field(), "chat_template");
}

TEST(ChatPromptTest, ToolsKwargsAndToolCalls) {
  const ChatPrompt model = with_template(
      "{% if tools %}{{ tools | tojson }}|{% endif %}{{ enable_thinking }}|"
      "{% for m in messages %}{{ m.role }}:{{ m.content }}"
      "{% for c in m.tool_calls or [] %}<{{ c.function.name }} {{ c.function.arguments | tojson }}>"
      "{% endfor %}{{ m.reasoning_content or '' }}{{ m.tool_call_id or '' }};{% endfor %}");
  std::vector<api::ChatMessage> msgs = user("weather?");
  api::ChatMessage call;
  call.role = "assistant";
  call.reasoning_content = "hmm";
  call.tool_calls_json =
      R"([{"id":"c1","type":"function","function":{"name":"get","arguments":"{\"z\":1,\"a\":2}"}},)"
      R"({"type":"function","function":{"name":"raw","arguments":"not json"}}])";
  msgs.push_back(call);
  api::ChatMessage result;
  result.role = "tool";
  result.content = "sunny";
  result.tool_call_id = "c1";
  msgs.push_back(result);
  api::ChatTemplateFields fields;
  fields.tools_json = R"([{"type":"function","function":{"name":"get","parameters":{}}}])";
  fields.kwargs_json = R"({"enable_thinking":false})";
  auto r = model.render(msgs, true, fields);
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  // Arguments text is parsed into an object (key order kept), as vLLM does; other text stays.
  EXPECT_EQ(r->text,
            R"([{"type": "function", "function": {"name": "get", "parameters": {}}}]|false|)"
            R"(user:weather?;assistant:<get {"z": 1, "a": 2}><raw "not json">hmm;tool:sunnyc1;)");

  fields.kwargs_json = R"({"messages":[]})";
  auto clash = model.render(msgs, true, fields);
  ASSERT_FALSE(clash.has_value());
  EXPECT_EQ(clash.status().field(), "chat_template_kwargs");
}

TEST(ChatPromptTest, ContinueFinalMessage) {
  const ChatPrompt model = with_template(
      "{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}</{{ m.role }}>"
      "{% endfor %}");
  std::vector<api::ChatMessage> msgs = user("q");
  api::ChatMessage partial;
  partial.role = "assistant";
  partial.content = "The answer is ";
  msgs.push_back(partial);
  api::ChatTemplateFields fields;
  fields.continue_final_message = true;
  auto r = model.render(msgs, false, fields);
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  // The template trimmed the trailing space, so the cut is after the stripped content.
  EXPECT_EQ(r->text, "<user>q</user><assistant>The answer is");

  const ChatPrompt keeps_space = with_template(
      "{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}");
  auto k = keeps_space.render(msgs, false, fields);
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->text, "<user>q</user><assistant>The answer is ");

  const ChatPrompt drops = with_template("{{ messages[0].content }}");
  auto missing = drops.render(msgs, false, fields);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.status().field(), "continue_final_message");

  auto plain = ChatPrompt{}.render(msgs, false, fields);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->text, "user: q\nassistant: The answer is ");
}

}  // namespace
}  // namespace turbine::frontend
