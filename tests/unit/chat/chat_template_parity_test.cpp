// Parity with @huggingface/jinja: the real chat templates in $TURBINE_SHARED/tokenizers render
// generated conversations byte for byte like the reference, which runs in node during the test
// (tests/tools/chat/render_templates.mjs). Without node or the package the test is skipped, or
// fails when CI=true (run `npm ci` in tests/tools/chat).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "chat_test_util.h"

namespace turbine::chat {
namespace {

using nlohmann::ordered_json;
namespace fs = std::filesystem;

constexpr int kConversationsPerTemplate = 40;

struct ParityCase {
  std::string label;
  std::string source;
  ordered_json context;
  std::string now;  // pinned clock for strftime_now, or empty
};

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// Runs the reference on `cases`; on success fills `results` (one {"ok", "output"/"error"} each).
// Returns an empty string, or why the reference could not run.
std::string run_reference(const std::vector<ParityCase>& cases, ordered_json* results) {
  const fs::path tools = testing::source_dir() / "tests/tools/chat";
  if (!fs::exists(tools / "node_modules/@huggingface/jinja/package.json")) {
    return "@huggingface/jinja is not installed (run `npm ci` in tests/tools/chat)";
  }
  if (std::system("node --version > /dev/null 2>&1") != 0) return "node is not installed";
  ordered_json input = {{"cases", ordered_json::array()}};
  for (const ParityCase& c : cases) {
    ordered_json j = {{"template", c.source}, {"context", c.context}};
    if (!c.now.empty()) j["now"] = c.now;
    input["cases"].push_back(std::move(j));
  }
  const fs::path dir = fs::path(::testing::TempDir()) /
                       ("chat_parity_" + std::to_string(reinterpret_cast<uintptr_t>(&cases)));
  fs::create_directories(dir);
  const fs::path in_path = dir / "cases.json", out_path = dir / "expected.json";
  std::ofstream(in_path, std::ios::binary) << input.dump();
  const std::string cmd = "cd '" + tools.string() + "' && TZ=UTC node render_templates.mjs '" +
                          in_path.string() + "' '" + out_path.string() + "' 2> '" +
                          (dir / "stderr.txt").string() + "'";
  if (std::system(cmd.c_str()) != 0) {
    return "render_templates.mjs failed: " + testing::read_file(dir / "stderr.txt");
  }
  *results = ordered_json::parse(testing::read_file(out_path));
  fs::remove_all(dir);
  if (results->size() != cases.size()) return "reference returned the wrong number of results";
  return "";
}

// Compares every case; returns how many the reference rendered without error.
int expect_parity(const std::vector<ParityCase>& cases) {
  ordered_json expected;
  std::string why = run_reference(cases, &expected);
  if (!why.empty()) {
    if (in_ci()) ADD_FAILURE() << why;
    return -1;
  }
  int ok_count = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const ParityCase& c = cases[i];
    SCOPED_TRACE(c.label + " context=" + c.context.dump());
    auto tmpl = ChatTemplate::parse(c.source, testing::test_options());
    Result<std::string> got = tmpl ? tmpl->render(c.context) : Result<std::string>(tmpl.status());
    const ordered_json& want = expected[i];
    if (want["ok"].get<bool>()) {
      ++ok_count;
      if (!got) {
        ADD_FAILURE() << "we failed where the reference rendered: " << got.status().message();
        continue;
      }
      const std::string& w = want["output"].get_ref<const std::string&>();
      if (*got != w) {
        size_t at = 0;
        while (at < w.size() && at < got->size() && w[at] == (*got)[at]) ++at;
        ADD_FAILURE() << "first difference at byte " << at << "\n--- reference:\n"
                      << w << "\n--- ours:\n"
                      << *got;
      }
    } else {
      EXPECT_FALSE(got) << "the reference failed (" << want["error"].get<std::string>()
                        << ") but we rendered:\n"
                        << *got;
    }
  }
  return ok_count;
}

// ---- conversation generator ---------------------------------------------------------------------

// Small deterministic generator (splitmix64) so the cases are the same on every run.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
  bool chance(int percent) { return below(100) < static_cast<size_t>(percent); }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

 private:
  uint64_t s_;
};

const std::vector<std::string> kUserTexts = {
    "Hello!",
    "What's the weather like in Paris today?",
    "  Please answer briefly.  \n",
    "Line one\nLine two\n\nLine four",
    "Unicode: caf\u00e9, \u4e2d\u6587, emoji \U0001F600, quotes \" ' and a backslash \\",
    "Tabs\tand\r\nCRLF line endings",
    "{\"json\": [1, 2, {\"nested\": true}]}",
    "Special tokens <|im_end|> and <|eot_id|> in user text",
    "<tool_response>looks like a tool response</tool_response>",
    "ends with a newline\n",
    "x",
};
const std::vector<std::string> kAssistantTexts = {
    "Sure, here you go.",
    "The answer is 42.",
    "\nLeading newline and trailing spaces   ",
    "Multi\nline\nanswer",
    "Let me check that for you.",
    "R\u00e9sum\u00e9: \u00fcber \u2014 done \u2713",
};
const std::vector<std::string> kThinkingTexts = {
    "<think>\nThe user wants the weather.\n</think>\n\nIt is sunny.",
    "<think>short</think>answer after short thought",
    "<think>\n\n</think>\n\nEmpty thought.",
    "reasoning without opening tag\n</think>\n\nFinal.",
};
const std::vector<std::string> kSystemTexts = {
    "You are a helpful assistant.",
    "You are a pirate. Answer like one.\nAlways be concise.",
    "  System prompt with surrounding spaces  ",
};
const std::vector<std::string> kToolNames = {"get_weather", "search_web", "calculator", "get_time"};

ordered_json make_tool(Rng& rng, const std::string& name) {
  ordered_json props = ordered_json::object();
  props["location"] = {{"type", "string"}, {"description", "City name, e.g. San Francisco"}};
  if (rng.chance(50)) {
    props["unit"] = {{"type", "string"}, {"enum", {"celsius", "fahrenheit"}}};
  }
  if (rng.chance(40)) {
    props["limit"] = {{"type", "integer"}, {"minimum", 1}, {"maximum", 100}, {"default", 10}};
  }
  if (rng.chance(30)) {
    props["threshold"] = {{"type", "number"}, {"minimum", 0.5}, {"multipleOf", 0.25}};
  }
  if (rng.chance(30)) {
    props["filters"] = {{"type", "object"},
                        {"properties",
                         {{"tags", {{"type", "array"}, {"items", {{"type", "string"}}}}},
                          {"strict", {{"type", "boolean"}}}}}};
  }
  if (rng.chance(15)) props["2"] = {{"type", "null"}, {"description", "integer-like key"}};
  ordered_json fn = {
      {"name", name},
      {"description", rng.chance(30) ? "Looks things up \u2014 fast & \"accurate\""
                                     : "Get information for " + name},
      {"parameters", {{"type", "object"}, {"properties", props}, {"required", {"location"}}}}};
  return {{"type", "function"}, {"function", fn}};
}

ordered_json make_arguments(Rng& rng) {
  ordered_json args = {{"location", rng.chance(50) ? "Paris" : "S\u00e3o Paulo"}};
  if (rng.chance(50)) args["limit"] = static_cast<int>(rng.below(20));
  if (rng.chance(30)) args["threshold"] = 0.75;
  if (rng.chance(30)) args["filters"] = {{"tags", {"a", "b"}}, {"strict", rng.chance(50)}};
  return args;
}

enum class Family { kLlama, kQwen25, kQwen3 };

ParityCase make_case(Rng& rng, Family family, const std::string& source, const std::string& label,
                     const std::string& bos, const std::string& eos) {
  ordered_json messages = ordered_json::array();
  if (rng.chance(50)) messages.push_back({{"role", "system"}, {"content", rng.pick(kSystemTexts)}});
  const bool tool_flows = family != Family::kLlama || rng.chance(25);
  const size_t turns = 1 + rng.below(4);
  for (size_t t = 0; t < turns; ++t) {
    messages.push_back({{"role", "user"}, {"content", rng.pick(kUserTexts)}});
    const bool last = t + 1 == turns;
    if (last && rng.chance(50)) break;  // end on a user turn
    if (tool_flows && rng.chance(40)) {
      ordered_json calls = ordered_json::array();
      const size_t n_calls = 1 + rng.below(2);
      for (size_t k = 0; k < n_calls; ++k) {
        ordered_json fn = {{"name", rng.pick(kToolNames)}};
        if (family == Family::kQwen3 && rng.chance(25)) {
          fn["arguments"] = make_arguments(rng).dump();  // arguments as a JSON string
        } else {
          fn["arguments"] = make_arguments(rng);
        }
        if (family == Family::kQwen25 && rng.chance(20)) {
          calls.push_back(fn);  // a bare {name, arguments} call
        } else {
          calls.push_back(
              {{"id", "call_" + std::to_string(k)}, {"type", "function"}, {"function", fn}});
        }
      }
      ordered_json assistant = {{"role", "assistant"}};
      // qwen3 and llama need string content; null content is a render error in both renderers.
      if (family == Family::kQwen25 && rng.chance(50)) {
        assistant["content"] = nullptr;
      } else {
        assistant["content"] = rng.chance(50) ? std::string() : rng.pick(kAssistantTexts);
      }
      assistant["tool_calls"] = calls;
      messages.push_back(assistant);
      for (size_t k = 0; k < n_calls; ++k) {
        messages.push_back(
            {{"role", "tool"},
             {"tool_call_id", "call_" + std::to_string(k)},
             {"content", rng.chance(50) ? "{\"temperature\": 21.5, \"unit\": \"celsius\"}"
                                        : "Result line 1\nResult line 2"}});
      }
      if (last && rng.chance(50)) break;  // end after tool results
    }
    ordered_json assistant = {{"role", "assistant"}};
    if (family == Family::kQwen3 && rng.chance(50)) {
      assistant["content"] = rng.pick(kThinkingTexts);
    } else {
      assistant["content"] = rng.pick(kAssistantTexts);
    }
    if (family == Family::kQwen3 && rng.chance(20)) {
      assistant["reasoning_content"] =
          rng.chance(80) ? ordered_json("Separate reasoning.") : ordered_json(nullptr);
    }
    messages.push_back(assistant);
    if (family != Family::kLlama && rng.chance(10)) {
      messages.push_back({{"role", "system"}, {"content", "Mid-conversation system note."}});
    }
  }
  ordered_json tools = nullptr;
  if (family != Family::kLlama ? rng.chance(50) : rng.chance(20)) {
    tools = ordered_json::array();
    const size_t n = 1 + rng.below(3);
    for (size_t k = 0; k < n; ++k) tools.push_back(make_tool(rng, kToolNames[k]));
  }
  ordered_json context = {{"messages", messages},
                          {"tools", tools},
                          {"add_generation_prompt", rng.chance(60)},
                          {"bos_token", bos},
                          {"eos_token", eos}};
  if (family == Family::kQwen3) {
    size_t mode = rng.below(3);
    if (mode == 1) context["enable_thinking"] = true;
    if (mode == 2) context["enable_thinking"] = false;
  }
  return ParityCase{label, source, std::move(context), ""};
}

struct RealTemplate {
  const char* name;
  Family family;
};

class ChatTemplateParity : public ::testing::TestWithParam<RealTemplate> {};

TEST_P(ChatTemplateParity, MatchesHuggingFaceJinja) {
  const RealTemplate& rt = GetParam();
  const fs::path config = testing::shared_dir() / "tokenizers" / rt.name / "tokenizer_config.json";
  if (!fs::exists(config)) {
    if (in_ci()) FAIL() << "missing " << config;
    GTEST_SKIP() << "missing " << config;
  }
  ordered_json cfg = ordered_json::parse(testing::read_file(config));
  const std::string source = cfg["chat_template"].get<std::string>();
  auto token = [&](const char* key) {
    return cfg.contains(key) && cfg[key].is_string() ? cfg[key].get<std::string>() : std::string();
  };
  ASSERT_TRUE(ChatTemplate::parse(source)) << "template does not parse";

  Rng rng(0xC0FFEEull + static_cast<uint64_t>(rt.family) * 7919u + std::string(rt.name).size());
  std::vector<ParityCase> cases;
  for (int i = 0; i < kConversationsPerTemplate; ++i) {
    cases.push_back(make_case(rng, rt.family, source,
                              std::string(rt.name) + "#" + std::to_string(i), token("bos_token"),
                              token("eos_token")));
  }
  // Hand-picked edge cases.
  cases.push_back({std::string(rt.name) + "#single-user",
                   source,
                   {{"messages", {{{"role", "user"}, {"content", "hi"}}}},
                    {"tools", nullptr},
                    {"add_generation_prompt", true},
                    {"bos_token", token("bos_token")},
                    {"eos_token", token("eos_token")}},
                   ""});
  cases.push_back(
      {std::string(rt.name) + "#no-tools-key",
       source,
       {{"messages",
         {{{"role", "system"}, {"content", "s"}}, {{"role", "user"}, {"content", "u"}}}},
        {"add_generation_prompt", false}},
       ""});

  int ok = expect_parity(cases);
  if (ok < 0) GTEST_SKIP() << "reference renderer unavailable (set CI=true to fail instead)";
  EXPECT_GE(ok, 30) << "too few conversations rendered successfully by the reference";
}

INSTANTIATE_TEST_SUITE_P(RealTemplates, ChatTemplateParity,
                         ::testing::Values(RealTemplate{"llama3", Family::kLlama},
                                           RealTemplate{"llama3_1", Family::kLlama},
                                           RealTemplate{"qwen2_5", Family::kQwen25},
                                           RealTemplate{"qwen3", Family::kQwen3}),
                         [](const auto& info) { return std::string(info.param.name); });

// The feature fixture's expectations are what the reference renders today.
TEST(ChatTemplateFeatureParity, FixtureMatchesHuggingFaceJinja) {
  ordered_json fixture = ordered_json::parse(
      testing::read_file(testing::source_dir() / "tests/fixtures/chat/feature_cases.json"));
  std::vector<ParityCase> cases;
  for (const auto& c : fixture["cases"]) {
    cases.push_back({c["name"].get<std::string>(), c["template"].get<std::string>(), c["context"],
                     c.contains("now") ? c["now"].get<std::string>() : std::string()});
  }
  int ok = expect_parity(cases);
  if (ok < 0) GTEST_SKIP() << "reference renderer unavailable (set CI=true to fail instead)";
}

}  // namespace
}  // namespace turbine::chat
