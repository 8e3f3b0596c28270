// What a request constrains its output to, as it travels with the request (SamplingParams, the
// worker wire protocol, migration). Deliberately free of heavy includes: the engine and the wire
// code carry it without knowing how it is compiled (structured/compiler.h does that).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turbine::structured {

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

  bool active() const { return kind != Kind::kNone; }
  friend bool operator==(const ConstraintSpec&, const ConstraintSpec&) = default;
};

// Stable lower-case names for the wire and for logs: "none", "json_schema", "json_object",
// "regex", "choice", "grammar".
const char* constraint_kind_name(ConstraintSpec::Kind kind);
std::optional<ConstraintSpec::Kind> parse_constraint_kind(std::string_view name);

}  // namespace turbine::structured
