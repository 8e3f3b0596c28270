// Expression trees that the regex and GBNF parsers produce, and their lowering into NFA pieces.
// Lowering either matches the text itself (raw UTF-8) or its canonical encoding inside a JSON
// string (a JSON Schema `pattern` constrains the decoded string, the grammar produces the
// escaped form).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "structured/codepoints.h"
#include "structured/grammar.h"

namespace turbine::structured {

struct Expr {
  enum class Kind : uint8_t { kEmpty, kText, kClass, kRule, kSeq, kAlt, kRepeat };
  Kind kind = Kind::kEmpty;
  std::string text;                             // kText: UTF-8 (raw bytes in raw mode)
  CodepointSet set;                             // kClass
  int32_t rule = -1;                            // kRule
  int min = 0;                                  // kRepeat
  int max = -1;                                 // kRepeat; -1 unbounded
  std::vector<std::unique_ptr<Expr>> children;  // kSeq, kAlt: parts; kRepeat: one

  static std::unique_ptr<Expr> make(Kind kind);
  static std::unique_ptr<Expr> text_of(std::string text);
  static std::unique_ptr<Expr> class_of(CodepointSet set);
  // `item` repeated min..max times (max -1: unbounded).
  static std::unique_ptr<Expr> repeat_of(std::unique_ptr<Expr> item, int min, int max);
};

// The bounds of the one-character quantifiers both parsers read: '*' {0, -1}, '+' {1, -1},
// '?' {0, 1}; false for any other character.
bool simple_quantifier(char c, int* min, int* max);

// The decimal number at s[*pos] of a {n,m} repetition, capped at 1e9 (above every limit), and
// *pos moved past it; false when no digit is there.
bool read_repeat_count(std::string_view s, size_t* pos, int* out);

enum class Encoding : uint8_t {
  kRaw,         // the text as UTF-8 bytes
  kJsonString,  // each code point in its one canonical JSON string form (see json_char)
};

// The canonical JSON string form of one code point: raw UTF-8 except `\"`, `\\`, the short
// escapes \b \f \n \r \t, and `\u00XX` for the other control characters.
std::string json_char(uint32_t cp);

// One member of `set`, encoded.
Frag lower_class(NfaBuilder& b, const CodepointSet& set, Encoding enc);
Frag lower_text(NfaBuilder& b, const std::string& text, Encoding enc);
Frag lower(NfaBuilder& b, const Expr& e, Encoding enc);

}  // namespace turbine::structured
