// What a request constrains its output to, as it travels with the request (SamplingParams, the
// worker wire protocol, migration). Deliberately free of heavy includes: the engine and the wire
// code carry it without knowing how it is compiled (structured/compiler.h does that).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turbine::structured {

// Reasoning models (DeepSeek-R1, Qwen3 thinking): the constraint starts once the reasoning block
// has ended, so the model thinks freely first. Token ids of the block's markup as the model emits
// it (the frontend encodes the reasoning parser's tags with the model's tokenizer). A marker of
// several ids is matched as that exact id sequence; the same text tokenized otherwise does not
// count (vLLM matches ids too).
struct StartTrigger {
  // The ids that end the reasoning ("</think>"). Empty: the constraint applies from the first
  // token (no reasoning, or the prompt closed the block: Qwen3 with enable_thinking false).
  std::vector<int32_t> end = {};
  // Empty (with `end`): the prompt left a block open (DeepSeek-R1's "<think>\n" generation
  // prompt), so the output starts inside it. Non-empty: the prompt has no open block, but the
  // output may open one with exactly these ids as its first tokens ("<think>", Qwen3's template
  // with thinking on); any other first token starts the constraint at once.
  std::vector<int32_t> open = {};

  bool active() const { return !end.empty(); }
  friend bool operator==(const StartTrigger&, const StartTrigger&) = default;
};
// Bounds the frontend and the wire hold a trigger to (markers are a token or a few).
inline constexpr size_t kMaxTriggerIds = 16;

struct ConstraintSpec {
  enum class Kind : uint8_t {
    kNone = 0,    // unconstrained
    kJsonSchema,  // text: a JSON Schema document
    kJsonObject,  // any JSON object; text ignored (empty)
    kRegex,       // text: a regular expression the whole output must match
    kChoice,      // text: a JSON array of strings; the output is exactly one of them
    kGrammar,     // text: GBNF/EBNF grammar with a `root` rule
  };
  Kind kind = Kind::kNone;
  std::string text;
  // Where the constraint starts (reasoning models); not part of the compiled grammar.
  StartTrigger start = {};

  bool active() const { return kind != Kind::kNone; }
  friend bool operator==(const ConstraintSpec&, const ConstraintSpec&) = default;
};

// Stable lower-case names for the wire and for logs: "none", "json_schema", "json_object",
// "regex", "choice", "grammar".
const char* constraint_kind_name(ConstraintSpec::Kind kind);
std::optional<ConstraintSpec::Kind> parse_constraint_kind(std::string_view name);

}  // namespace turbine::structured
