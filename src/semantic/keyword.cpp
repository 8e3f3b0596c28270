#include "semantic/keyword.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace turbine::semantic {
namespace {

pcre2_code* as_code(void* p) {
  return static_cast<pcre2_code*>(p);
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

// One match-data block per thread: the ovector only needs the whole-match pair (a smaller
// ovector than the pattern's captures still reports the match).
pcre2_match_data* thread_match_data() {
  struct Holder {
    pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
    ~Holder() { pcre2_match_data_free(md); }
  };
  thread_local Holder holder;
  return holder.md;
}

}  // namespace

std::string regex_error(std::string_view pattern) {
  auto r = Regex::compile(pattern);
  return r.has_value() ? std::string() : r.status().message();
}

Result<Regex> Regex::compile(std::string_view pattern, uint32_t flags) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | flags, &err,
                                   &offset, nullptr);
  if (code == nullptr) {
    return invalid_argument(pcre2_message(err) + " at offset " + std::to_string(offset));
  }
  // JIT is an optimisation; a platform without it still matches through the interpreter.
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return Regex(code);
}

Regex::Regex(Regex&& o) noexcept : code_(o.code_) {
  o.code_ = nullptr;
}
Regex& Regex::operator=(Regex&& o) noexcept {
  if (this != &o) {
    if (code_) pcre2_code_free(as_code(code_));
    code_ = o.code_;
    o.code_ = nullptr;
  }
  return *this;
}
Regex::~Regex() {
  if (code_) pcre2_code_free(as_code(code_));
}

bool Regex::match_at(std::string_view text, size_t start, size_t& begin, size_t& end) const {
  pcre2_match_data* md = thread_match_data();
  int rc = pcre2_match(as_code(code_), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                       start, 0, md, nullptr);
  if (rc < 0) return false;  // no match, or a matching error (treated as no match)
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
  begin = ov[0];
  end = ov[1];
  return true;
}

bool Regex::search(std::string_view text) const {
  size_t b = 0, e = 0;
  return match_at(text, 0, b, e);
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  size_t start = 0;
  size_t b = 0, e = 0;
  while (start <= text.size() && match_at(text, start, b, e)) {
    out.emplace_back(b, e);
    start = e > b ? e : e + 1;
    // Never restart inside a UTF-8 sequence after an empty match.
    while (start < text.size() && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) {
      ++start;
    }
  }
  return out;
}

std::string regex_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 2);
  bool in_space = false;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n') {
      if (!in_space) out += "\\s+";
      in_space = true;
      continue;
    }
    in_space = false;
    if (std::string_view("\\^$.|?*+()[]{}-/#").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

namespace {
// Word boundaries only where the keyword starts/ends with a word character, so "C++" or ".NET"
// still match.
std::string keyword_pattern(std::string_view kw) {
  auto is_word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           (static_cast<unsigned char>(c) >= 0x80);
  };
  std::string p;
  if (!kw.empty() && is_word(kw.front())) p += "\\b";
  p += regex_escape(kw);
  if (!kw.empty() && is_word(kw.back())) p += "\\b";
  return p;
}
}  // namespace

Result<KeywordMatcher> KeywordMatcher::compile(const KeywordSignal& signal) {
  KeywordMatcher m;
  m.name_ = signal.name;
  m.op_ = signal.op;
  uint32_t flags = signal.case_sensitive ? 0 : PCRE2_CASELESS;
  if (signal.op == KeywordOperator::kAnd) {
    for (const std::string& kw : signal.keywords) {
      TURBINE_ASSIGN_OR_RETURN(Regex r, Regex::compile(keyword_pattern(kw), flags));
      m.patterns_.push_back(std::move(r));
    }
    for (const std::string& re : signal.regex) {
      TURBINE_ASSIGN_OR_RETURN(Regex r, Regex::compile(re, flags));
      m.patterns_.push_back(std::move(r));
    }
    return m;
  }
  std::string alt;
  for (const std::string& kw : signal.keywords) {
    if (!alt.empty()) alt += '|';
    alt += "(?:" + keyword_pattern(kw) + ")";
  }
  for (const std::string& re : signal.regex) {
    if (!alt.empty()) alt += '|';
    alt += "(?:" + re + ")";
  }
  TURBINE_ASSIGN_OR_RETURN(Regex r, Regex::compile(alt, flags));
  m.patterns_.push_back(std::move(r));
  return m;
}

bool KeywordMatcher::matches(std::string_view text) const {
  switch (op_) {
    case KeywordOperator::kOr: return patterns_.front().search(text);
    case KeywordOperator::kNor: return !patterns_.front().search(text);
    case KeywordOperator::kAnd:
      for (const Regex& r : patterns_) {
        if (!r.search(text)) return false;
      }
      return true;
  }
  return false;
}

}  // namespace turbine::semantic
