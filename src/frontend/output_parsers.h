// The reasoning and tool-call parsers (src/parsers) as the postprocessor's text processors.
//
// A served model gets its parsers once, when it is added (`turbine run`, or a card the frontend
// learns from discovery): --tool-call-parser / --reasoning-parser name them, or auto-detection
// reads the chat template and the model type. Per chat choice the factory then builds one
// OutputParser (reasoning first, then tool calls) configured by the request:
// - tool_choice "none", or no tools: no tool-call parsing (the text stays content);
// - "auto": the model's format, calls only to the request's tools;
// - "required" / a named function with a constraint enforced by the engine
//   (frontend/constraint_plan.h): the generic JSON parser over the array of calls, or one call
//   of the named function over its arguments object;
// - parallel_tool_calls false: calls after the first are dropped (OpenAI: at most one call);
// - a prompt that ends inside <think> (DeepSeek-R1's template) starts the output in reasoning.
// A choice whose output made calls and stopped by itself finishes with "tool_calls".
//
// Markup tokens the active parsers read (<|python_tag|>, [TOOL_CALLS], DeepSeek's tool tokens,
// <think>, ...) are kept in the text even with skip_special_tokens (ModelParsers::keep_special).
//
// Threads: resolve_parsers() and the factory are pure (any thread); a processor belongs to one
// choice and runs on its request's strand.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "frontend/postprocessor.h"
#include "model/model_info.h"
#include "parsers/output_parser.h"
#include "structured/constraint_spec.h"
#include "tokenizer/tokenizer.h"

namespace turbine::frontend {

// The operator's choice (flags); nullopt: detect from the model.
struct ParserChoice {
  std::optional<parsers::ToolCallFormat> tool_format;
  std::optional<parsers::ReasoningFormat> reasoning_format;
};

// The parsers of one served model.
struct ModelParsers {
  parsers::ToolCallFormat tool_format = parsers::ToolCallFormat::kNone;
  parsers::ReasoningFormat reasoning_format = parsers::ReasoningFormat::kNone;
  std::vector<int32_t> keep_special;  // sorted ids of the parsers' special markup tokens
};

// Flags first, then detection from `hints`; the markup tokens are looked up in the vocabulary
// (one pass over it: call once per model).
ModelParsers resolve_parsers(const ParserChoice& choice, const parsers::ModelHints& hints,
                             const tokenizer::Tokenizer& tokenizer);

// The special tokens whose pieces are the markup of these formats.
std::vector<int32_t> markup_token_ids(parsers::ToolCallFormat tool_format,
                                      parsers::ReasoningFormat reasoning_format,
                                      const tokenizer::Tokenizer& tokenizer);

// A reasoning model's block markup as token ids, for constraints that start after the reasoning
// (structured::StartTrigger): each tag is the token whose piece is exactly the tag (Qwen3's and
// DeepSeek-R1's added <think> / </think>), else the tag as the tokenizer encodes it alone.
struct ReasoningMarkup {
  parsers::ReasoningFormat format = parsers::ReasoningFormat::kNone;
  std::vector<int32_t> open;
  std::vector<int32_t> close;
  bool active() const { return !open.empty() && !close.empty(); }
};
// One pass over the vocabulary: call once per model. Inactive for kNone.
ReasoningMarkup reasoning_markup(parsers::ReasoningFormat format,
                                 const tokenizer::Tokenizer& tokenizer);

// Where a chat request's output constraint starts, from its rendered prompt:
// - no reasoning markup, or the prompt ends with the closing tag (after whitespace: Qwen3 with
//   enable_thinking false closes an empty block): at the first token (an empty trigger);
// - the prompt leaves a block open (parsers::prompt_in_reasoning, DeepSeek-R1): after the
//   closing tag's ids;
// - otherwise (Qwen3 with thinking on): the output may open a block with the opening tag as its
//   first token, then the constraint starts after the closing tag; any other first token starts
//   it at once. Reasoning cut off by max_tokens ends with `length` and no constrained output.
structured::StartTrigger constraint_start(std::string_view prompt_text,
                                          const ReasoningMarkup& markup);

// The per-choice processors of a model's chat responses (empty when nothing applies).
TextProcessorFactory make_parser_factory(ModelParsers parsers);

// The text processors of a served model named `name` (logged): `choice`, else detection from
// `info`'s chat template and architecture; `resolved` (optional) gets the parsers chosen.
TextProcessorFactory parsers_for_model(const ParserChoice& choice, const std::string& name,
                                       const model::ModelInfo& info,
                                       const tokenizer::Tokenizer& tokenizer,
                                       ModelParsers* resolved = nullptr);

// One StreamParser as a TextProcessor: its pieces become the delta's content, reasoning and tool
// calls; calls with an index >= max_calls are dropped (parallel_tool_calls false: 1);
// `markup` are the special tokens it reads (TextProcessor::markup_tokens).
std::unique_ptr<TextProcessor> make_parser_processor(
    std::unique_ptr<parsers::StreamParser> parser, int max_calls,
    std::shared_ptr<const std::vector<int32_t>> markup = nullptr);

}  // namespace turbine::frontend
