#include "structured/regex.h"

#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

namespace turbine::structured {
namespace {

CodepointSet digit_set() {
  return CodepointSet::range('0', '9');
}

CodepointSet word_set() {
  CodepointSet s = CodepointSet::range('a', 'z');
  s.add('A', 'Z');
  s.add('0', '9');
  s.add('_', '_');
  return s;
}

// JavaScript's \s: WhiteSpace and LineTerminator.
CodepointSet space_set() {
  CodepointSet s = CodepointSet::range('\t', '\r');
  for (uint32_t cp :
       {0x20u, 0xA0u, 0x1680u, 0x2028u, 0x2029u, 0x202Fu, 0x205Fu, 0x3000u, 0xFEFFu}) {
    s.add(cp, cp);
  }
  s.add(0x2000, 0x200A);
  return s;
}

CodepointSet dot_set() {
  CodepointSet s = CodepointSet::single('\n');
  s.add('\r', '\r');
  s.add(0x2028, 0x2029);
  return s.complement();
}

class RegexParser {
 public:
  RegexParser(std::string_view text, RegexMode mode, const CompileLimits& limits)
      : s_(text), mode_(mode), limits_(limits) {}

  Result<std::unique_ptr<Expr>> parse() {
    if (s_.size() > limits_.max_input_bytes) {
      return invalid_argument("regex is longer than " + std::to_string(limits_.max_input_bytes) +
                              " bytes");
    }
    // Top level: alternatives, each possibly anchored at its ends.
    auto alt = Expr::make(Expr::Kind::kAlt);
    while (true) {
      bool anchored_start = false, anchored_end = false;
      if (peek('^')) {
        ++pos_;
        anchored_start = true;
      } else if (s_.substr(pos_, 2) == "\\A") {
        pos_ += 2;
        anchored_start = true;
      }
      auto seq = parse_seq(0, &anchored_end);
      if (!status_.is_ok()) return status_;
      if (mode_ == RegexMode::kSearch) {
        auto wrapped = Expr::make(Expr::Kind::kSeq);
        if (!anchored_start) wrapped->children.push_back(any_star());
        wrapped->children.push_back(std::move(seq));
        if (!anchored_end) wrapped->children.push_back(any_star());
        seq = std::move(wrapped);
      }
      alt->children.push_back(std::move(seq));
      if (pos_ >= s_.size()) break;
      if (s_[pos_] == '|') {
        ++pos_;
        continue;
      }
      error(s_[pos_] == ')' ? "unbalanced ')'" : "unexpected character");
      return status_;
    }
    if (alt->children.size() == 1) return std::move(alt->children[0]);
    return alt;
  }

 private:
  static std::unique_ptr<Expr> any_star() {
    return Expr::repeat_of(Expr::class_of(CodepointSet::all()), 0, -1);
  }

  bool peek(char c) const { return pos_ < s_.size() && s_[pos_] == c; }

  bool error(const std::string& what) {
    if (status_.is_ok()) {
      status_ = invalid_argument("invalid regex at offset " + std::to_string(pos_) + ": " + what);
    }
    return false;
  }

  // A sequence up to '|' or ')' or the end. `anchored_end`: non-null at the top level, where a
  // final '$' is allowed.
  std::unique_ptr<Expr> parse_seq(int depth, bool* anchored_end) {
    auto seq = Expr::make(Expr::Kind::kSeq);
    while (pos_ < s_.size() && status_.is_ok()) {
      const char c = s_[pos_];
      if (c == '|' || c == ')') break;
      if (c == '$' || s_.substr(pos_, 2) == "\\Z" || s_.substr(pos_, 2) == "\\z") {
        const size_t len = c == '$' ? 1 : 2;
        const bool at_end = pos_ + len == s_.size() || s_[pos_ + len] == '|';
        if (anchored_end == nullptr || !at_end) {
          error("anchors are only supported at the start or end of the pattern");
          break;
        }
        pos_ += len;
        *anchored_end = true;
        break;
      }
      if (c == '^' || s_.substr(pos_, 2) == "\\A") {
        error("anchors are only supported at the start or end of the pattern");
        break;
      }
      auto atom = parse_atom(depth);
      if (!status_.is_ok()) break;
      atom = parse_quantifiers(std::move(atom));
      seq->children.push_back(std::move(atom));
    }
    return seq;
  }

  std::unique_ptr<Expr> parse_quantifiers(std::unique_ptr<Expr> atom) {
    while (pos_ < s_.size() && status_.is_ok()) {
      int min = 0, max = -1;
      if (simple_quantifier(s_[pos_], &min, &max)) {
        ++pos_;
      } else if (s_[pos_] == '{') {
        size_t save = pos_;
        if (!parse_braces(&min, &max)) {
          pos_ = save;  // not a quantifier: a literal '{' (as in Python and legacy JavaScript)
          break;
        }
        if (!status_.is_ok()) break;
      } else {
        break;
      }
      if (peek('?')) ++pos_;  // lazy
      if (peek('+')) {
        error("possessive quantifiers are not supported");
        break;
      }
      if (peek('*') || peek('{')) {
        size_t save = pos_;
        int a = 0, b = 0;
        if (peek('*') || parse_braces(&a, &b)) {
          pos_ = save;
          error("nothing to repeat");
          break;
        }
        pos_ = save;
      }
      atom = Expr::repeat_of(std::move(atom), min, max);
    }
    return atom;
  }

  // {n}, {n,}, {n,m}. Returns false if the text is not a quantifier at all.
  bool parse_braces(int* min, int* max) {
    size_t p = pos_ + 1;
    const auto number = [&](int* out) { return read_repeat_count(s_, &p, out); };
    int a = 0, b = -1;
    if (!number(&a)) return false;
    if (p < s_.size() && s_[p] == '}') {
      b = a;
    } else if (p < s_.size() && s_[p] == ',') {
      ++p;
      if (p < s_.size() && s_[p] != '}' && !number(&b)) return false;
    } else {
      return false;
    }
    if (p >= s_.size() || s_[p] != '}') return false;
    pos_ = p + 1;
    if (a > limits_.max_repeat || b > limits_.max_repeat) {
      error("repetition count above the limit of " + std::to_string(limits_.max_repeat));
    } else if (b >= 0 && a > b) {
      error("repetition {" + std::to_string(a) + "," + std::to_string(b) + "} has min > max");
    }
    *min = a;
    *max = b;
    return true;
  }

  std::unique_ptr<Expr> parse_atom(int depth) {
    const char c = s_[pos_];
    switch (c) {
      case '(': return parse_group(depth);
      case '[': return parse_class();
      case '.': ++pos_; return Expr::class_of(dot_set());
      case '*':
      case '+':
      case '?': error("nothing to repeat"); return nullptr;
      case '\\': {
        CodepointSet set;
        if (!parse_escape(false, &set)) return nullptr;
        return Expr::class_of(std::move(set));
      }
      default: break;
    }
    uint32_t cp = 0;
    const size_t n = decode_utf8(std::string(s_.substr(pos_, 4)), 0, &cp);
    if (n == 0) {
      error("invalid UTF-8");
      return nullptr;
    }
    pos_ += n;
    return Expr::class_of(CodepointSet::single(cp));
  }

  std::unique_ptr<Expr> parse_group(int depth) {
    if (depth + 1 > limits_.max_nesting_depth) {
      error("groups nested deeper than " + std::to_string(limits_.max_nesting_depth));
      return nullptr;
    }
    ++pos_;
    if (peek('?')) {
      const std::string_view rest = s_.substr(pos_);
      if (rest.substr(0, 2) == "?:") {
        pos_ += 2;
      } else if (rest.substr(0, 2) == "?<" && rest.substr(0, 3) != "?<=" &&
                 rest.substr(0, 3) != "?<!") {
        if (!skip_group_name(2)) return nullptr;
      } else if (rest.substr(0, 3) == "?P<") {
        if (!skip_group_name(3)) return nullptr;
      } else if (rest.substr(0, 2) == "?=" || rest.substr(0, 2) == "?!" ||
                 rest.substr(0, 3) == "?<=" || rest.substr(0, 3) == "?<!") {
        error("lookaround assertions are not supported");
        return nullptr;
      } else {
        error("unsupported group syntax (inline flags, comments, conditionals)");
        return nullptr;
      }
    }
    auto alt = Expr::make(Expr::Kind::kAlt);
    while (status_.is_ok()) {
      alt->children.push_back(parse_seq(depth + 1, nullptr));
      if (!status_.is_ok()) return nullptr;
      if (peek('|')) {
        ++pos_;
        continue;
      }
      if (peek(')')) {
        ++pos_;
        break;
      }
      error("missing ')'");
      return nullptr;
    }
    if (alt->children.size() == 1) return std::move(alt->children[0]);
    return alt;
  }

  bool skip_group_name(size_t prefix) {
    size_t p = pos_ + prefix;
    const size_t start = p;
    while (p < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[p])) || s_[p] == '_')) {
      ++p;
    }
    if (p == start || p >= s_.size() || s_[p] != '>') {
      error("invalid group name");
      return false;
    }
    pos_ = p + 1;
    return true;
  }

  std::unique_ptr<Expr> parse_class() {
    ++pos_;  // '['
    bool negated = false;
    if (peek('^')) {
      negated = true;
      ++pos_;
    }
    if (peek(']')) {
      if (negated) {  // JavaScript's [^]: any character
        ++pos_;
        return Expr::class_of(CodepointSet::all());
      }
      error("empty character class");
      return nullptr;
    }
    CodepointSet set;
    while (true) {
      if (pos_ >= s_.size()) {
        error("missing ']'");
        return nullptr;
      }
      if (s_[pos_] == ']') {
        ++pos_;
        break;
      }
      CodepointSet lo_set;
      uint32_t lo = 0;
      if (!class_atom(&lo_set, &lo)) return nullptr;
      if (peek('-') && pos_ + 1 < s_.size() && s_[pos_ + 1] != ']') {
        ++pos_;
        CodepointSet hi_set;
        uint32_t hi = 0;
        if (!class_atom(&hi_set, &hi)) return nullptr;
        if (lo == UINT32_MAX || hi == UINT32_MAX) {
          error("a character class escape cannot bound a range");
          return nullptr;
        }
        if (lo > hi) {
          error("range out of order in character class");
          return nullptr;
        }
        set.add(lo, hi);
      } else {
        set.add(lo_set);
      }
    }
    return Expr::class_of(negated ? set.complement() : set);
  }

  // One class member: a character (*cp, *set = {cp}) or a class escape (*cp = UINT32_MAX).
  bool class_atom(CodepointSet* set, uint32_t* cp) {
    if (s_[pos_] == '\\') {
      if (!parse_escape(true, set)) return false;
      const auto& r = set->ranges();
      *cp = (r.size() == 1 && r[0].first == r[0].second) ? r[0].first : UINT32_MAX;
      return true;
    }
    const size_t n = decode_utf8(std::string(s_.substr(pos_, 4)), 0, cp);
    if (n == 0) {
      error("invalid UTF-8");
      return false;
    }
    pos_ += n;
    *set = CodepointSet::single(*cp);
    return true;
  }

  bool hex(size_t from, size_t len, uint32_t* out) {
    if (from + len > s_.size()) return false;
    uint32_t v = 0;
    for (size_t i = 0; i < len; ++i) {
      const char c = s_[from + i];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    *out = v;
    return true;
  }

  bool parse_escape(bool in_class, CodepointSet* out) {
    if (pos_ + 1 >= s_.size()) {
      error("trailing backslash");
      return false;
    }
    const char c = s_[pos_ + 1];
    pos_ += 2;
    const auto one = [&](uint32_t cp) {
      *out = CodepointSet::single(cp);
      return true;
    };
    switch (c) {
      case 'd': *out = digit_set(); return true;
      case 'D': *out = digit_set().complement(); return true;
      case 'w': *out = word_set(); return true;
      case 'W': *out = word_set().complement(); return true;
      case 's': *out = space_set(); return true;
      case 'S': *out = space_set().complement(); return true;
      case 't': return one('\t');
      case 'n': return one('\n');
      case 'r': return one('\r');
      case 'f': return one('\f');
      case 'v': return one('\v');
      case 'b':
        if (in_class) return one('\b');
        error("word boundaries (\\b) are not supported");
        return false;
      case 'B': error("word boundaries (\\B) are not supported"); return false;
      case '0':
        if (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
          error("octal escapes are not supported");
          return false;
        }
        return one(0);
      case 'x': {
        uint32_t v = 0;
        if (!hex(pos_, 2, &v)) {
          error("\\x needs two hex digits");
          return false;
        }
        pos_ += 2;
        return one(v);
      }
      case 'u': {
        uint32_t v = 0;
        if (peek('{')) {
          const size_t close = s_.find('}', pos_);
          if (close == std::string_view::npos || close == pos_ + 1 || close - pos_ - 1 > 6 ||
              !hex(pos_ + 1, close - pos_ - 1, &v) || v > kMaxCodePoint) {
            error("invalid \\u{...} escape");
            return false;
          }
          pos_ = close + 1;
        } else {
          if (!hex(pos_, 4, &v)) {
            error("\\u needs four hex digits");
            return false;
          }
          pos_ += 4;
        }
        if (v >= 0xD800 && v <= 0xDFFF) {
          error("surrogate code points cannot be matched");
          return false;
        }
        return one(v);
      }
      case 'p':
      case 'P': error("Unicode property escapes are not supported"); return false;
      case 'k': error("backreferences are not supported"); return false;
      case 'c': error("control escapes (\\c) are not supported"); return false;
      default: break;
    }
    if (c >= '1' && c <= '9') {
      error("backreferences are not supported");
      return false;
    }
    if (std::isalnum(static_cast<unsigned char>(c))) {
      error(std::string("unknown escape \\") + c);
      return false;
    }
    if (static_cast<unsigned char>(c) >= 0x80) {
      --pos_;  // escaped non-ASCII character: the character itself
      uint32_t cp = 0;
      const size_t n = decode_utf8(std::string(s_.substr(pos_, 4)), 0, &cp);
      if (n == 0) {
        error("invalid UTF-8");
        return false;
      }
      pos_ += n;
      return one(cp);
    }
    return one(static_cast<unsigned char>(c));
  }

  std::string_view s_;
  RegexMode mode_;
  const CompileLimits& limits_;
  size_t pos_ = 0;
  Status status_;
};

}  // namespace

Result<std::unique_ptr<Expr>> parse_regex(std::string_view pattern, RegexMode mode,
                                          const CompileLimits& limits) {
  RegexParser p(pattern, mode, limits);
  return p.parse();
}

Result<Grammar> regex_to_grammar(std::string_view pattern, const CompileLimits& limits) {
  TURBINE_ASSIGN_OR_RETURN(auto expr, parse_regex(pattern, RegexMode::kFullMatch, limits));
  Grammar g;
  const int32_t root = g.add_rule("root");
  NfaBuilder::Budget budget{limits.max_nfa_states, Status::ok()};
  NfaBuilder b(&budget);
  const Frag f = lower(b, *expr, Encoding::kRaw);
  if (!budget.status.is_ok()) return budget.status;
  g.set_body(root, b.finish(f));
  g.set_root(root);
  return g;
}

}  // namespace turbine::structured
