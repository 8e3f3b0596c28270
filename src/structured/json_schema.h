// JSON Schema (and "any JSON object", and choices) -> grammar.
//
// Supported keywords: type (incl. unions), properties, required, additionalProperties (false, true
// or a schema), enum, const, anyOf, oneOf (branches must be provably exclusive: different JSON
// types, or a required property with distinct const/enum values), allOf with one schema, $ref to
// $defs / definitions / any JSON pointer in the document (recursion allowed), items, prefixItems,
// minItems, maxItems, uniqueItems: false, pattern, format (date-time, date, time, uuid, email),
// minLength, maxLength, minimum, maximum, exclusiveMinimum, exclusiveMaximum (integers; numbers
// see below). Annotations (title, description, examples, default, $schema, $id, $comment,
// deprecated, readOnly, writeOnly, discriminator, contentEncoding, contentMediaType, x-*) are
// accepted. Any other keyword is an error naming it and the schema location: a constraint is never
// silently dropped.
//
// Output policy (what the grammar generates; always valid under the schema, a subset of it):
// - properties appear in the schema's order; optional ones may be skipped; without
//   additionalProperties (or with false) no other keys; with true or a schema, extra keys (never
//   equal to a declared name) come after the declared ones;
// - whitespace: kCompact emits none; kBounded (default) allows 0..max_whitespace of [ \n\t]
//   after '{' '[' ',' ':' and before '}' ']' (enough for pretty-printing), and never elsewhere;
// - strings: any JSON escape except lone surrogates in unconstrained strings; strings with
//   length, pattern, format, const or enum use one canonical spelling per character (raw UTF-8,
//   \" \\ \b \f \n \r \t, \u00XX for other controls); `pattern` is a search (anchor with ^...$
//   to match the whole string), as JSON Schema defines;
// - numbers: at most 15 integer digits, 16 fraction digits and 2 exponent digits (finite
//   doubles); integers in a range are exactly the range (an unbounded side stops at 15 digits);
//   a bounded `number` gets the integers of the range and decimals k.ddd whose whole [k, k+1)
//   lies in it.
#pragma once

#include <string_view>

#include "common/status.h"
#include "structured/grammar.h"

namespace turbine::structured {

struct JsonGrammarOptions {
  enum class Whitespace : uint8_t { kCompact, kBounded };
  Whitespace whitespace = Whitespace::kBounded;
  int max_whitespace = 8;  // per separator, kBounded
};

Result<Grammar> json_schema_to_grammar(std::string_view schema_json,
                                       const JsonGrammarOptions& options,
                                       const CompileLimits& limits);

// Any JSON object (response_format json_object).
Result<Grammar> json_object_grammar(const JsonGrammarOptions& options, const CompileLimits& limits);

// `choices_json`: a JSON array of strings; the output is exactly one of them (raw text).
Result<Grammar> choice_to_grammar(std::string_view choices_json, const CompileLimits& limits);

}  // namespace turbine::structured
