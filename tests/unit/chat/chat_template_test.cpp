// Feature tests: small templates with known output. The table in
// tests/fixtures/chat/feature_cases.json holds the outputs @huggingface/jinja produces (the
// parity test re-checks them against it when node is available); this test needs no node.
#include "chat/chat_template.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "chat/value.h"
#include "chat_test_util.h"

namespace turbine::chat {
namespace {

using nlohmann::ordered_json;
using testing::render_or_error;

ordered_json load_feature_cases() {
  return ordered_json::parse(
      testing::read_file(testing::source_dir() / "tests/fixtures/chat/feature_cases.json"));
}

TEST(ChatTemplateFeatures, FixtureCasesRenderAsExpected) {
  ordered_json fixture = load_feature_cases();
  ASSERT_GE(fixture["cases"].size(), 40u);
  for (const auto& c : fixture["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    std::string got = render_or_error(c["template"].get<std::string>(), c["context"]);
    if (c.contains("error")) {
      EXPECT_EQ(got.rfind("ERROR: ", 0), 0u) << got;
    } else {
      EXPECT_EQ(got, c["expected"].get<std::string>());
    }
  }
}

TEST(ChatTemplateFeatures, SimpleSubstitution) {
  EXPECT_EQ(render_or_error("Hello {{ name }}!", {{"name", "world"}}), "Hello world!");
  EXPECT_EQ(render_or_error("", ordered_json::object()), "");
  EXPECT_EQ(render_or_error("plain\n", ordered_json::object()),
            "plain");  // one trailing \n dropped
}

TEST(ChatTemplateFeatures, UndefinedIsFalsyAndEmpty) {
  EXPECT_EQ(render_or_error(
                "[{{ nope }}]{{ nope is defined }}{{ nope is undefined }}{% if nope %}x{% endif %}",
                ordered_json::object()),
            "[]falsetrue");
  EXPECT_EQ(render_or_error("{{ nope.deeper.still }}|", ordered_json::object()), "|");
}

TEST(ChatTemplateFeatures, ExtraKwargsLikeEnableThinking) {
  const std::string t =
      "{%- if enable_thinking is defined and enable_thinking is false %}off{% else %}on{% endif %}";
  EXPECT_EQ(render_or_error(t, ordered_json::object()), "on");
  EXPECT_EQ(render_or_error(t, {{"enable_thinking", false}}), "off");
  EXPECT_EQ(render_or_error(t, {{"enable_thinking", true}}), "on");
}

TEST(ChatTemplateFeatures, ExtensionsBeyondTheReference) {
  // Filters @huggingface/jinja lacks but Jinja has.
  EXPECT_EQ(render_or_error("{{ [1, 2, 3]|count }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ "
                            "'abc'|first }}{{ 'abc'|last }}",
                            ordered_json::object()),
            "3 2.57 3.0 ac");
  EXPECT_EQ(render_or_error("{{ 5 is equalto(5) }} {{ 5 is eq(6) }}", ordered_json::object()),
            "true false");
  EXPECT_EQ(render_or_error("{{ missing|default }}|", ordered_json::object()), "|");
}

TEST(ChatTemplateFeatures, StrftimeNowUsesInjectedClock) {
  EXPECT_EQ(render_or_error("{{ strftime_now('%d %b %Y') }}", ordered_json::object()),
            "26 Jul 2024");
}

TEST(ChatTemplateFeatures, ObjectKeyOrderFollowsJavaScript) {
  // Insertion order is kept; integer-like keys come first, as after JSON.parse.
  ordered_json ctx = {{"o", ordered_json::parse(R"({"z": 1, "a": 2, "10": 3, "2": 4})")}};
  EXPECT_EQ(render_or_error("{{ o|tojson }}", ctx), R"({"2": 4, "10": 3, "z": 1, "a": 2})");
}

TEST(ChatTemplateFeatures, NumbersFormatLikeJavaScript) {
  EXPECT_EQ(js_number_to_string(0.1), "0.1");
  EXPECT_EQ(js_number_to_string(1e21), "1e+21");
  EXPECT_EQ(js_number_to_string(123456789012345680000.0), "123456789012345680000");
  EXPECT_EQ(js_number_to_string(1.5e-7), "1.5e-7");
  EXPECT_EQ(js_number_to_string(0.000001), "0.000001");
  EXPECT_EQ(js_number_to_string(-42), "-42");
  EXPECT_EQ(render_or_error("{{ x }} {{ y }} {{ x|tojson }}", {{"x", 2.0}, {"y", 2.5}}), "2 2.5 2");
}

TEST(ChatTemplateFeatures, ApplyChatTemplatePassesStandardVariables) {
  auto t = ChatTemplate::parse(
      "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
      "{% if add_generation_prompt %}<assistant>{% endif %}{{ tools is none }}{{ eos_token }}{{ "
      "mode }}");
  ASSERT_TRUE(t) << t.status().message();
  ordered_json messages = ordered_json::array({{{"role", "user"}, {"content", "hi"}}});
  auto r = apply_chat_template(*t, messages, nullptr, true, "<s>", "</s>", {{"mode", "x"}});
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(*r, "<s><user>hi<assistant>true</s>x");
  auto dup = apply_chat_template(*t, messages, nullptr, true, "<s>", "</s>", {{"messages", 1}});
  EXPECT_FALSE(dup);
}

TEST(ChatTemplateFeatures, NlohmannJsonOverloadRenders) {
  auto t = ChatTemplate::parse("{{ a }}-{{ b }}");
  ASSERT_TRUE(t);
  nlohmann::json ctx = {{"b", 2}, {"a", "x"}};
  auto r = t->render(ctx);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "x-2");
}

TEST(ChatTemplateFeatures, ConcurrentRendersShareOneTemplate) {
  auto t = ChatTemplate::parse(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ "
      "ns.n }}");
  ASSERT_TRUE(t);
  std::vector<std::thread> threads;
  std::vector<std::string> results(8);
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      ordered_json ctx = {{"messages", ordered_json::array()}};
      for (size_t k = 0; k <= i; ++k) ctx["messages"].push_back(k);
      for (int rep = 0; rep < 50; ++rep) results[i] = t->render(ctx).value();
    });
  }
  for (auto& th : threads) th.join();
  for (size_t i = 0; i < results.size(); ++i) EXPECT_EQ(results[i], std::to_string(i + 1));
}

// ---- errors -------------------------------------------------------------------------------------

Status parse_status(const std::string& source,
                    ChatTemplateOptions options = testing::test_options()) {
  auto t = ChatTemplate::parse(source, options);
  return t ? Status::ok() : t.status();
}

Status render_status(const std::string& source, const ordered_json& ctx = ordered_json::object(),
                     ChatTemplateOptions options = testing::test_options()) {
  auto t = ChatTemplate::parse(source, options);
  if (!t) return t.status();
  auto r = t->render(ctx);
  return r ? Status::ok() : r.status();
}

TEST(ChatTemplateErrors, SyntaxErrorsAreInvalidArgument) {
  for (const char* bad : {"{% if true %}never closed", "{{ unterminated", "{{ 'open string }}",
                          "{% for x in %}{% endfor %}", "{# no end", "{% endif %}", "{% bogus %}",
                          "{{ 1 + }}", "{{ x[ }}", "{% for %}", "{{ 'bad \\q escape' }}", "{{ ! }}",
                          "{% if x %}{% elif %}{% endif %}", "{% macro %}{% endmacro %}"}) {
    Status st = parse_status(bad);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(st.message().find("syntax error"), std::string::npos) << st.message();
  }
  Status st = parse_status("line1\nline2 {% if true %}");
  EXPECT_NE(st.message().find("line 2"), std::string::npos) << st.message();
}

TEST(ChatTemplateErrors, UnknownFilterAndTest) {
  Status st = render_status("{{ 'x'|nosuchfilter }}");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("nosuchfilter"), std::string::npos) << st.message();
  st = render_status("{{ 1 is nosuchtest }}");
  EXPECT_NE(st.message().find("nosuchtest"), std::string::npos) << st.message();
}

TEST(ChatTemplateErrors, RaiseExceptionCarriesTheTemplateMessage) {
  Status st = render_status(
      "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation roles must alternate "
      "user/assistant/user/assistant/...') }}{% endif %}",
      {{"messages", ordered_json::array({{{"role", "assistant"}}})}});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "Conversation roles must alternate user/assistant/user/assistant/...");
}

TEST(ChatTemplateErrors, TypeErrors) {
  EXPECT_EQ(render_status("{{ 'a' - 1 }}").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(render_status("{{ none + 1 }}").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(render_status("{{ x() }}", {{"x", 1}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(render_status("{% for x in 5 %}{% endfor %}").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(render_status("{% set x.y = 1 %}", {{"x", {{"y", 1}}}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(render_status("{{ [1, 'a']|sort }}").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(render_status("{{ (1, 2) }}").code(), StatusCode::kInvalidArgument);
}

TEST(ChatTemplateErrors, ReservedContextNames) {
  Status st = render_status("x", {{"true", 1}});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
}

TEST(ChatTemplateErrors, DeepNestingIsRejectedNotACrash) {
  std::string deep_parens(100000, '(');
  EXPECT_EQ(parse_status("{{ " + deep_parens + "1 }}").code(), StatusCode::kInvalidArgument);
  std::string deep_ifs;
  for (int i = 0; i < 10000; ++i) deep_ifs += "{% if true %}";
  EXPECT_EQ(parse_status(deep_ifs).code(), StatusCode::kInvalidArgument);
  std::string long_chain = "{{ a";
  for (int i = 0; i < 100000; ++i) long_chain += " ~ a";
  long_chain += " }}";
  Status st = parse_status(long_chain);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("nested deeper"), std::string::npos) << st.message();
  std::string nots = "{{ ";
  for (int i = 0; i < 100000; ++i) nots += "not ";
  EXPECT_EQ(parse_status(nots + "x }}").code(), StatusCode::kInvalidArgument);
  // Fifty nested blocks are fine.
  std::string ok;
  for (int i = 0; i < 50; ++i) ok += "{% if true %}";
  ok += "x";
  for (int i = 0; i < 50; ++i) ok += "{% endif %}";
  EXPECT_EQ(render_or_error(ok, ordered_json::object()), "x");
}

TEST(ChatTemplateErrors, DeepContextIsRejected) {
  ordered_json deep = 1;
  for (int i = 0; i < 1000; ++i) deep = ordered_json::array({deep});
  EXPECT_EQ(render_status("{{ x|length }}", {{"x", deep}}).code(), StatusCode::kInvalidArgument);
}

TEST(ChatTemplateErrors, UnboundedRecursionHitsTheCallDepthLimit) {
  Status st = render_status("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("nested deeper"), std::string::npos) << st.message();
}

TEST(ChatTemplateErrors, HugeLoopsHitTheIterationLimit) {
  Status st = render_status("{% for i in range(100000000) %}x{% endfor %}");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("range()"), std::string::npos) << st.message();
  st = render_status(
      "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(10) %}{% endfor %}{% "
      "endfor %}{% endfor %}");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("loop iterations"), std::string::npos) << st.message();
}

TEST(ChatTemplateErrors, OutputSizeLimit) {
  ChatTemplateOptions o = testing::test_options();
  o.render_limits.max_output_bytes = 1000;
  Status st =
      render_status("{% for i in range(200) %}0123456789{% endfor %}", ordered_json::object(), o);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("exceeds"), std::string::npos) << st.message();
  // Doubling a string hits the limit too.
  st = render_status(
      "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% "
      "endfor %}",
      ordered_json::object(), o);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
}

TEST(ChatTemplateErrors, SelfReferencingNamespaceDoesNotHangOrLeak) {
  Status st = render_status("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns|tojson }}");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(
      render_or_error("{% set ns = namespace() %}{% set ns.me = ns %}ok", ordered_json::object()),
      "ok");
}

}  // namespace
}  // namespace turbine::chat
