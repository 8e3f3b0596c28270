// One choice's postprocessing after detokenization: the reasoning parser first (reasoning goes
// out as is), then the tool-call parser over what the reasoning parser calls content. Also the
// flag names and the auto-detection that pick the parsers for a model.
//
// Typical use (frontend, per choice, on the request's strand):
//   OutputParserConfig cfg{.tool_format = model.tool_format, .reasoning_format = ...,
//                          .prompt_in_reasoning = prompt_in_reasoning(prompt, fmt)};
//   auto parser = make_output_parser(cfg);   // nullptr: pass text through as content
//   parser->feed(text_delta, deltas); ... parser->finish(deltas);
//   finish_reason = parser->tool_calls() > 0 ? kToolCalls : <engine's reason>;
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "parsers/reasoning_parser.h"
#include "parsers/tool_parsers.h"

namespace turbine::parsers {

class OutputParser final : public StreamParser {
 public:
  // Either may be null (then that stage passes text through).
  OutputParser(std::unique_ptr<StreamParser> reasoning, std::unique_ptr<StreamParser> tools);
  void feed(std::string_view text, Deltas& out) override;
  void finish(Deltas& out) override;
  int tool_calls() const override { return tools_ ? tools_->tool_calls() : 0; }

 private:
  void route(Deltas& staged, Deltas& out);

  std::unique_ptr<StreamParser> reasoning_;
  std::unique_ptr<StreamParser> tools_;
  DeltaWriter writer_;  // content when there is no tool stage
};

struct OutputParserConfig {
  // kNone: no tool parsing (the request has no tools, or tool_choice is "none").
  ToolCallFormat tool_format = ToolCallFormat::kNone;
  // tool_choice naming a function, enforced by constrained decoding: the output (after any
  // reasoning) is that function's arguments. Takes precedence over tool_format.
  std::optional<std::string> forced_function = {};
  ReasoningFormat reasoning_format = ReasoningFormat::kNone;
  bool prompt_in_reasoning = false;  // see prompt_in_reasoning()
  ToolParserOptions tool_options = {};
};

// nullptr when the config asks for nothing (plain text: content is the text).
std::unique_ptr<StreamParser> make_output_parser(const OutputParserConfig& config);

// --tool-call-parser NAME: hermes (aliases qwen, qwen2_5, qwen3), llama3_json (llama3, llama),
// mistral, deepseek_v3 (deepseek, deepseek_r1, deepseek_v31), json (generic), none.
// nullopt for "auto" (detect per model). Unknown names: kInvalidArgument listing the names.
Result<std::optional<ToolCallFormat>> parse_tool_call_parser_name(std::string_view name);
// --reasoning-parser NAME: deepseek_r1, qwen3 (both <think>), mistral ([THINK]), none; "auto".
Result<std::optional<ReasoningFormat>> parse_reasoning_parser_name(std::string_view name);
const char* tool_call_format_name(ToolCallFormat format);
const char* reasoning_format_name(ReasoningFormat format);

// What auto-detection looks at: the chat template's text (GGUF tokenizer.chat_template or
// tokenizer_config.json) and config.json's model_type (GGUF general.architecture).
struct ModelHints {
  std::string_view chat_template = {};
  std::string_view model_type = {};
};
// Markers in the template first (<tool_call>: hermes; <｜tool▁calls▁begin｜>: deepseek_v3;
// [TOOL_CALLS]: mistral; <|python_tag|> or Llama's "parameters" instruction: llama3_json), then
// the model type (qwen2/qwen3: hermes, mistral/mixtral: mistral, deepseek_v2/v3: deepseek_v3);
// otherwise the generic JSON parser.
ToolCallFormat detect_tool_call_format(const ModelHints& hints);
// <think> in the template: kThink; [THINK]: kBracketThink; otherwise kNone.
ReasoningFormat detect_reasoning_format(const ModelHints& hints);

}  // namespace turbine::parsers
