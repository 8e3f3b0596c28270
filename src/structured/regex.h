// Regular expressions (the subset JavaScript and Python share) -> grammar.
//
// Supported: literals, escapes (\d \w \s and negations, \t \n \r \f \v \0, \xHH, \uHHHH,
// \u{H...}, escaped punctuation), classes with ranges and negation, `.` (any character except
// \n \r U+2028 U+2029, as in JavaScript), groups (plain, (?:...), named), alternation, the
// quantifiers * + ? {n} {n,} {n,m} (lazy forms accepted: laziness does not change what matches),
// and ^ / $ (\A, \Z) only at the start / end of a top-level alternative. Backreferences,
// lookaround, word boundaries, inline flags, Unicode properties and anchors elsewhere are errors.
#pragma once

#include <memory>
#include <string_view>

#include "common/status.h"
#include "structured/expr.h"
#include "structured/grammar.h"

namespace turbine::structured {

enum class RegexMode : uint8_t {
  kFullMatch,  // the whole text must match (guided_regex)
  kSearch,     // JSON Schema `pattern`: a match anywhere unless anchored with ^ / $
};

// The regex as an expression over code points (to lower raw or inside a JSON string).
Result<std::unique_ptr<Expr>> parse_regex(std::string_view pattern, RegexMode mode,
                                          const CompileLimits& limits);

// A grammar whose root matches exactly the texts the regex full-matches.
Result<Grammar> regex_to_grammar(std::string_view pattern, const CompileLimits& limits);

}  // namespace turbine::structured
