// Building blocks of the JSON grammars (internal to json_schema.cpp): whitespace, strings,
// numbers and integer ranges, formats, literal values and the "any JSON value" rule.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "structured/expr.h"
#include "structured/grammar.h"
#include "structured/json_schema.h"

namespace turbine::structured::json {

using Json = nlohmann::ordered_json;

// Digits allowed in generated numbers (see json_schema.h).
inline constexpr int kMaxIntegerDigits = 15;
inline constexpr int kMaxFractionDigits = 16;
inline constexpr int kMaxExponentDigits = 2;

Frag ws(NfaBuilder& b, const JsonGrammarOptions& o);
// One character inside a JSON string: `canonical` = one spelling per character (json_char),
// else any escape but lone surrogates.
Frag string_char(NfaBuilder& b, bool canonical);
Frag plain_string(NfaBuilder& b);
Frag string_length(NfaBuilder& b, int min, int max);  // max < 0: unbounded
// A string (quoted) that differs from every one of `names`.
Frag string_excluding(NfaBuilder& b, const std::vector<std::string>& names);
Frag number(NfaBuilder& b);
Frag integer(NfaBuilder& b);

// The canonical compact serialization our grammars emit for a value (strings via json_char).
std::string serialize(const Json& v);
std::string quote(const std::string& utf8);

// Integers in [lo, hi] (nullopt: unbounded, stopped at kMaxIntegerDigits digits) as decimal text.
// kInvalidArgument if the range is empty.
Result<std::unique_ptr<Expr>> integer_range(std::optional<int64_t> lo, std::optional<int64_t> hi);
// Numbers in a range (see json_schema.h); kInvalidArgument if nothing can be generated.
Result<std::unique_ptr<Expr>> number_range(std::optional<double> lo, bool lo_exclusive,
                                           std::optional<double> hi, bool hi_exclusive);
// A `format` as an expression over the decoded string; kInvalidArgument for unknown formats.
Result<std::unique_ptr<Expr>> format(const std::string& name, const CompileLimits& limits);

// Body of a rule matching any JSON value; `self` is the rule's own id (nested values).
Frag any_value(NfaBuilder& b, int32_t self, const JsonGrammarOptions& o);
// Any JSON object whose values are the rule `value`.
Frag any_object(NfaBuilder& b, int32_t value, const JsonGrammarOptions& o);

}  // namespace turbine::structured::json
