// Parser names (--tool-call-parser / --reasoning-parser), auto-detection from the chat templates
// in ../shared/tokenizers, and prompt_in_reasoning on rendered prompts.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "parsers/output_parser.h"

namespace turbine::parsers {
namespace {

std::string shared_dir() {
  const char* env = std::getenv("TURBINE_SHARED");
  return env != nullptr ? env : TURBINE_SHARED_DEFAULT;
}

// The chat_template of a shared tokenizer_config.json. The shared assets are part of the
// checkout's environment: a missing file fails the test.
std::string shared_template(const std::string& model) {
  const std::string path = shared_dir() + "/tokenizers/" + model + "/tokenizer_config.json";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  boost::json::value v = boost::json::parse(ss.str());
  const boost::json::value* t = v.as_object().if_contains("chat_template");
  EXPECT_NE(t, nullptr) << path;
  return t != nullptr ? std::string(t->as_string()) : std::string();
}

TEST(Names, ToolCallParsers) {
  EXPECT_EQ(*parse_tool_call_parser_name("hermes"), ToolCallFormat::kHermes);
  EXPECT_EQ(*parse_tool_call_parser_name("qwen3"), ToolCallFormat::kHermes);
  EXPECT_EQ(*parse_tool_call_parser_name("llama3_json"), ToolCallFormat::kLlama3Json);
  EXPECT_EQ(*parse_tool_call_parser_name("mistral"), ToolCallFormat::kMistral);
  EXPECT_EQ(*parse_tool_call_parser_name("deepseek_v3"), ToolCallFormat::kDeepSeek);
  EXPECT_EQ(*parse_tool_call_parser_name("deepseek_r1"), ToolCallFormat::kDeepSeek);
  EXPECT_EQ(*parse_tool_call_parser_name("json"), ToolCallFormat::kJson);
  EXPECT_EQ(*parse_tool_call_parser_name("none"), ToolCallFormat::kNone);
  auto aut = parse_tool_call_parser_name("auto");
  ASSERT_TRUE(aut.has_value());
  EXPECT_FALSE(aut->has_value());
  auto bad = parse_tool_call_parser_name("pythonic");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("hermes"), std::string::npos);
  for (ToolCallFormat f :
       {ToolCallFormat::kNone, ToolCallFormat::kHermes, ToolCallFormat::kLlama3Json,
        ToolCallFormat::kMistral, ToolCallFormat::kDeepSeek, ToolCallFormat::kJson}) {
    EXPECT_EQ(*parse_tool_call_parser_name(tool_call_format_name(f)), f);  // names round-trip
  }
}

TEST(Names, ReasoningParsers) {
  EXPECT_EQ(*parse_reasoning_parser_name("deepseek_r1"), ReasoningFormat::kThink);
  EXPECT_EQ(*parse_reasoning_parser_name("qwen3"), ReasoningFormat::kThink);
  EXPECT_EQ(*parse_reasoning_parser_name("mistral"), ReasoningFormat::kBracketThink);
  EXPECT_EQ(*parse_reasoning_parser_name("none"), ReasoningFormat::kNone);
  EXPECT_FALSE(parse_reasoning_parser_name("auto")->has_value());
  EXPECT_FALSE(parse_reasoning_parser_name("o1").has_value());
  for (ReasoningFormat f :
       {ReasoningFormat::kNone, ReasoningFormat::kThink, ReasoningFormat::kBracketThink}) {
    EXPECT_EQ(*parse_reasoning_parser_name(reasoning_format_name(f)), f);
  }
}

TEST(Detect, SharedTemplates) {
  const std::string qwen25 = shared_template("qwen2_5");
  const std::string qwen3 = shared_template("qwen3");
  const std::string llama31 = shared_template("llama3_1");
  EXPECT_EQ(detect_tool_call_format({.chat_template = qwen25}), ToolCallFormat::kHermes);
  EXPECT_EQ(detect_reasoning_format({.chat_template = qwen25}), ReasoningFormat::kNone);
  EXPECT_EQ(detect_tool_call_format({.chat_template = qwen3}), ToolCallFormat::kHermes);
  EXPECT_EQ(detect_reasoning_format({.chat_template = qwen3}), ReasoningFormat::kThink);
  // The shared llama3_1 config carries a reduced template without tool instructions: nothing in
  // it names a format, so only the model type or the flag can pick llama3_json.
  EXPECT_EQ(detect_tool_call_format({.chat_template = llama31}), ToolCallFormat::kJson);
  EXPECT_EQ(detect_reasoning_format({.chat_template = llama31}), ReasoningFormat::kNone);
}

TEST(Detect, TemplateMarkersAndModelTypes) {
  // Excerpts of the families' published templates.
  EXPECT_EQ(detect_tool_call_format({.chat_template =
                                         "{%- if builtin_tools is defined or tool_call %}{{- "
                                         "'<|python_tag|>' + tool_call.name }}"}),
            ToolCallFormat::kLlama3Json);
  EXPECT_EQ(detect_tool_call_format(
                {.chat_template = "Respond in the format {\"name\": function name, "
                                  "\"parameters\": dictionary of argument name and its value}."}),
            ToolCallFormat::kLlama3Json);
  EXPECT_EQ(
      detect_tool_call_format(
          {.chat_template = "{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + "
                            "tool['type'] + '<｜tool▁sep｜>'}}"}),
      ToolCallFormat::kDeepSeek);
  EXPECT_EQ(detect_tool_call_format({.chat_template = "{{- \"[TOOL_CALLS] [\" }}"}),
            ToolCallFormat::kMistral);
  EXPECT_EQ(detect_reasoning_format({.chat_template = "{{'<｜Assistant｜><think>\\n'}}"}),
            ReasoningFormat::kThink);
  EXPECT_EQ(detect_reasoning_format({.chat_template = "[THINK]"}), ReasoningFormat::kBracketThink);
  EXPECT_EQ(detect_tool_call_format({.model_type = "qwen3_moe"}), ToolCallFormat::kHermes);
  EXPECT_EQ(detect_tool_call_format({.model_type = "mixtral"}), ToolCallFormat::kMistral);
  EXPECT_EQ(detect_tool_call_format({.model_type = "deepseek_v3"}), ToolCallFormat::kDeepSeek);
  EXPECT_EQ(detect_tool_call_format({.model_type = "llama"}), ToolCallFormat::kJson);
}

TEST(PromptInReasoning, RenderedPrompts) {
  // DeepSeek-R1's generation prompt opens the block.
  EXPECT_TRUE(
      prompt_in_reasoning("<｜User｜>2+2?<｜Assistant｜><think>\n", ReasoningFormat::kThink));
  // Qwen3 with enable_thinking=false renders an empty, closed block.
  EXPECT_FALSE(prompt_in_reasoning(
      "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
      ReasoningFormat::kThink));
  // Earlier turns' closed blocks do not count.
  EXPECT_FALSE(
      prompt_in_reasoning("<think>a</think>b<|im_start|>assistant\n", ReasoningFormat::kThink));
  EXPECT_FALSE(prompt_in_reasoning("no tags", ReasoningFormat::kThink));
  EXPECT_TRUE(prompt_in_reasoning("[INST]x[/INST][THINK]", ReasoningFormat::kBracketThink));
  EXPECT_FALSE(prompt_in_reasoning("<think>", ReasoningFormat::kNone));
}

}  // namespace
}  // namespace turbine::parsers
