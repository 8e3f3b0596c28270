// Reasoning parsers: separate a model's thinking from its answer.
//
// kThink: <think>reasoning</think>answer (Qwen3, QwQ, DeepSeek-R1 and its distills).
// kBracketThink: [THINK]reasoning[/THINK]answer (Mistral's Magistral).
//
// Rules (the same for both; split-invariant like every StreamParser):
// - The output may open with the tag (after whitespace). Templates that open the block in the
//   prompt (DeepSeek-R1's "<think>\n" generation prompt) are told so (`prompt_in_reasoning`): the
//   output then starts inside the reasoning and holds only the closing tag (an opening tag the
//   model repeats anyway is dropped).
// - Without an opening tag (and not prompt_in_reasoning) the whole output is content, verbatim.
// - Reasoning is the text between the tags without its leading and trailing newlines (what the
//   Qwen3 template strips when it renders reasoning back); the answer starts at the first
//   non-whitespace character after the closing tag. Later tags in the answer are content.
// - Output that ends inside the reasoning (max_tokens) is all reasoning. Reasoning never reaches
//   content.
#pragma once

#include <memory>
#include <string_view>

#include "parsers/stream_parser.h"

namespace turbine::parsers {

enum class ReasoningFormat { kNone, kThink, kBracketThink };

// nullptr for kNone.
std::unique_ptr<StreamParser> make_reasoning_parser(ReasoningFormat format,
                                                    bool prompt_in_reasoning);

// Whether a rendered prompt leaves a reasoning block open: its last opening tag comes after its
// last closing tag (DeepSeek-R1's "<think>\n" generation prompt: yes; Qwen3 with
// enable_thinking=false, which closes an empty block: no).
bool prompt_in_reasoning(std::string_view prompt, ReasoningFormat format);

}  // namespace turbine::parsers
