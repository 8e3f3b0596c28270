// Keyword signals: words, phrases and PCRE2 regexes combined with OR / AND / NOR.
//
// Words and phrases match on word boundaries (Unicode-aware), case-insensitively unless the
// signal says otherwise; whitespace inside a phrase matches any run of whitespace. A compiled
// matcher is immutable and safe to use from several threads at once (per-thread match data).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "semantic/config.h"

namespace turbine::semantic {

// "" when `pattern` compiles as a PCRE2 (UTF) pattern, else PCRE2's message with the offset.
std::string regex_error(std::string_view pattern);

// A compiled, JIT-ed PCRE2 pattern. Move-only; thread-safe after construction.
class Regex {
 public:
  // flags: PCRE2 compile options beyond PCRE2_UTF | PCRE2_UCP (e.g. PCRE2_CASELESS).
  static Result<Regex> compile(std::string_view pattern, uint32_t flags = 0);
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  ~Regex();

  bool search(std::string_view text) const;
  // Byte ranges of every non-overlapping match, left to right.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

 private:
  explicit Regex(void* code) : code_(code) {}
  // Returns the match [begin, end) at or after `start`, or false.
  bool match_at(std::string_view text, size_t start, size_t& begin, size_t& end) const;
  void* code_ = nullptr;  // pcre2_code_8*
};

// Escapes `text` for use as a literal inside a PCRE2 pattern.
std::string regex_escape(std::string_view text);

class KeywordMatcher {
 public:
  static Result<KeywordMatcher> compile(const KeywordSignal& signal);
  bool matches(std::string_view text) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  KeywordOperator op_ = KeywordOperator::kOr;
  // OR and NOR: one alternation of every keyword plus each regex; AND: one entry per keyword.
  std::vector<Regex> patterns_;
};

}  // namespace turbine::semantic
