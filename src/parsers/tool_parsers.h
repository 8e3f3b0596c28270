// Tool-call parsers: text of one choice in, content and OpenAI-shaped tool-call deltas out (the
// first piece of call i carries index i, its id and name; later pieces append to `arguments`).
//
// Formats (the model family's own documented output; see docs/ARCHITECTURE.md "parsers"):
//   kHermes      <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>  (Qwen2.5, Qwen3,
//                Hermes); several blocks for parallel calls.
//   kLlama3Json  {"name": "f", "parameters": {...}} as the whole answer, or after <|python_tag|>
//                anywhere; several calls separated by ';' (Llama 3.1/3.2/3.3).
//   kMistral     [TOOL_CALLS][{"name": "f", "arguments": {...}}, ...] (tokenizer v3..v7) and
//                [TOOL_CALLS]f[ARGS]{...} repeated per call (v11+; [CALL_ID]x is skipped).
//   kDeepSeek
//   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{...}\n```
//                <｜tool▁call▁end｜>...<｜tool▁calls▁end｜> (V3, R1) and the V3.1 form
//                <｜tool▁call▁begin｜>f<｜tool▁sep｜>{...}<｜tool▁call▁end｜>.
//   kJson        generic fallback: the output starts (after whitespace, optionally inside a
//                ``` fence) with a call object or an array of them; objects may follow one
//                another, separated by ';' or ','.
//
// Behaviour common to all formats:
// - Text before, between and after calls is content, streamed as soon as it cannot be the start
//   of markup. Whitespace before a call is dropped (content "Let me check." for
//   "Let me check.\n<tool_call>..."), and so is trailing whitespace of an output that made
//   calls; text after a call keeps its leading newline. Text without markup passes unchanged.
// - Markup of well-formed calls never appears in content.
// - A call is announced (id and name) once its name is known and its arguments have begun; the
//   arguments then stream as they arrive: a JSON object verbatim (raw control characters in
//   strings escaped), or the decoded contents when the model wrote them as a JSON string.
// - Malformed calls degrade to content: markup whose call cannot be parsed before it is
//   announced (bad JSON, no name, a name not in `tool_names`) is emitted as content, verbatim.
//   A call that breaks after it was announced (its arguments turn invalid, or the output ends
//   inside them, e.g. at max_tokens) keeps the arguments streamed so far, and the text from the
//   break on is content. Either way the unary result equals the assembled stream.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "parsers/stream_parser.h"

namespace turbine::parsers {

enum class ToolCallFormat { kNone, kHermes, kLlama3Json, kMistral, kDeepSeek, kJson };

struct ToolParserOptions {
  // When non-empty, a call naming a function not in the list is not a call (its text stays
  // content). The frontend passes the request's tool names.
  std::vector<std::string> tool_names = {};
  // Makes call ids (tests inject a counter); default make_call_id().
  std::function<std::string()> make_id = {};
};

// "call_" + 24 random alphanumerics (thread-local generator).
std::string make_call_id();

// nullptr for kNone.
std::unique_ptr<StreamParser> make_tool_call_parser(ToolCallFormat format,
                                                    ToolParserOptions options = {});

// For a forced named function (tool_choice {"type":"function", name}), where constrained
// decoding makes the whole output the arguments object: one call `name`, announced when the
// object begins; text after it is content.
std::unique_ptr<StreamParser> make_forced_call_parser(std::string name,
                                                      ToolParserOptions options = {});

}  // namespace turbine::parsers
