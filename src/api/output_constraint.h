// Structured outputs as requests spell them: OpenAI's `response_format` ({type: "json_object"} and
// {type: "json_schema", json_schema: {name, schema, strict}}, chat and completions), vLLM's
// `structured_outputs` ({json, regex, choice, grammar, json_object}) and its older `guided_json`,
// `guided_regex`, `guided_choice` and `guided_grammar`. One constraint per request: two (even of
// different spellings) are a 400 naming the second. The text is checked for shape only here;
// compiling it (and its errors: schema keywords, regex syntax, size limits) is the frontend's
// job, which names `param` in the 400. Pure; safe on any thread.
#pragma once

#include <string>

#include "common/status.h"

namespace boost::json {
class object;
}

namespace turbine::api {

struct OutputConstraint {
  enum class Kind { kNone, kJsonSchema, kJsonObject, kRegex, kChoice, kGrammar };
  Kind kind = Kind::kNone;
  // kJsonSchema: the schema (JSON text); kRegex: the pattern; kChoice: a JSON array of strings;
  // kGrammar: GBNF text with a `root` rule; kJsonObject, kNone: empty.
  std::string text;
  // The request field it came from ("response_format", "structured_outputs.regex",
  // "guided_json", ...): compile errors name it.
  std::string param;

  bool active() const { return kind != Kind::kNone; }
};

// Reads the constraint fields of a chat or completions body (null values count as absent).
Result<OutputConstraint> read_output_constraint(const boost::json::object& body);

}  // namespace turbine::api
