// Unicode regular expressions for tokenizer.json patterns (pre-tokenizer splits, replacements).
//
// tokenizer.json patterns are written for Oniguruma (the Rust `tokenizers` crate). They are
// translated to PCRE2 (UTF + UCP, JIT when the library has it) the way Hugging Face's
// tokenizers.js translates them to JavaScript, so both give the same splits:
//   \s / \S        -> Unicode White_Space (U+0009-000D, U+0085, \p{Z}) and its complement
//   \d / \D        -> \p{Nd} / \P{Nd}
//   (?i: ... )     -> ASCII-only case folding of the letters inside (no Unicode folding)
//   .              -> [^\n]
// Everything else (\p{L}, \p{N}, lookahead, counted repeats, possessive forms) is passed through.
//
// Thread ownership: a UnicodeRegex is immutable after compile() and may be shared by threads;
// match state lives in thread-local buffers.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace turbine::tokenizer {

class UnicodeRegex {
 public:
  // `literal`: match `pattern` as plain text (tokenizer.json {"String": ...} patterns).
  static Result<UnicodeRegex> compile(std::string_view pattern, bool literal = false);

  UnicodeRegex(UnicodeRegex&&) noexcept;
  UnicodeRegex& operator=(UnicodeRegex&&) noexcept;
  ~UnicodeRegex();

  // Appends the [begin, end) byte spans of all non-overlapping matches in `text`, left to right
  // (an empty match advances by one character, as JavaScript's matchAll does). `text` must be
  // well-formed UTF-8. Returns false if the matcher hit a resource limit (spans found so far are
  // kept); the caller decides how to continue.
  bool find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& spans) const;

  // Replaces every match with `replacement` (taken literally).
  std::string replace_all(std::string_view text, std::string_view replacement) const;

  // The PCRE2 pattern the Oniguruma one was translated to (for error messages and tests).
  const std::string& translated() const { return translated_; }

 private:
  struct Code;
  explicit UnicodeRegex(std::unique_ptr<Code> code, std::string translated);

  std::unique_ptr<Code> code_;
  std::string translated_;
};

// The Oniguruma -> PCRE2 translation described above (exposed for tests).
std::string translate_oniguruma_pattern(std::string_view pattern);

}  // namespace turbine::tokenizer
