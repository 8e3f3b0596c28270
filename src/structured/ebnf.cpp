#include "structured/ebnf.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/utf8.h"
#include "structured/expr.h"

namespace turbine::structured {
namespace {

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

class EbnfParser {
 public:
  EbnfParser(std::string_view text, const CompileLimits& limits) : s_(text), limits_(limits) {}

  Result<Grammar> parse() {
    if (s_.size() > limits_.max_input_bytes) {
      return invalid_argument("grammar is longer than " + std::to_string(limits_.max_input_bytes) +
                              " bytes");
    }
    skip_space();
    while (pos_ < s_.size() && status_.is_ok()) {
      const size_t at = pos_;
      std::string name = parse_name();
      if (name.empty()) {
        error("expected a rule name");
        break;
      }
      skip_space();
      if (s_.substr(pos_, 3) != "::=") {
        error("expected '::=' after rule name '" + name + "'");
        break;
      }
      pos_ += 3;
      skip_space();
      if (defs_.count(name) != 0) {
        pos_ = at;
        error("rule '" + name + "' is defined twice");
        break;
      }
      auto body = parse_alternates(0);
      if (!status_.is_ok()) break;
      if (defs_.size() >= limits_.max_rules) {
        error("more than " + std::to_string(limits_.max_rules) + " rules");
        break;
      }
      order_.push_back(name);
      defs_.emplace(std::move(name), std::move(body));
      skip_space();
    }
    if (!status_.is_ok()) return status_;
    if (defs_.count("root") == 0) return invalid_argument("the grammar has no 'root' rule");

    // Number the rules, resolve references, lower every body.
    Grammar g;
    std::map<std::string, int32_t> ids;
    for (const std::string& name : order_) ids[name] = g.add_rule(name);
    for (const auto& [name, at] : refs_) {
      if (ids.count(name) == 0) {
        pos_ = at;
        error("undefined rule '" + name + "'");
        return status_;
      }
    }
    NfaBuilder::Budget budget{limits_.max_nfa_states, Status::ok()};
    for (const std::string& name : order_) {
      Expr& body = *defs_[name];
      resolve(body, ids);
      NfaBuilder b(&budget);
      const Frag f = lower(b, body, Encoding::kRaw);
      if (!budget.status.is_ok()) return budget.status;
      g.set_body(ids[name], b.finish(f));
    }
    g.set_root(ids["root"]);
    return g;
  }

 private:
  static void resolve(Expr& e, const std::map<std::string, int32_t>& ids) {
    if (e.kind == Expr::Kind::kRule) e.rule = ids.at(e.text);
    for (auto& c : e.children) resolve(*c, ids);
  }

  bool error(const std::string& what) {
    if (status_.is_ok()) {
      size_t line = 1, col = 1;
      for (size_t i = 0; i < pos_ && i < s_.size(); ++i) {
        if (s_[i] == '\n') {
          ++line;
          col = 1;
        } else {
          ++col;
        }
      }
      status_ = invalid_argument("grammar error at line " + std::to_string(line) + ", column " +
                                 std::to_string(col) + ": " + what);
    }
    return false;
  }

  void skip_space() {
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else {
        break;
      }
    }
  }

  std::string parse_name() {
    const size_t start = pos_;
    while (pos_ < s_.size() && is_name_char(s_[pos_])) ++pos_;
    return std::string(s_.substr(start, pos_ - start));
  }

  // Whether a `name ::=` starts at pos_ (the end of the current rule body).
  bool at_rule_start() const {
    size_t p = pos_;
    while (p < s_.size() && is_name_char(s_[p])) ++p;
    if (p == pos_) return false;
    while (p < s_.size() && (s_[p] == ' ' || s_[p] == '\t' || s_[p] == '\n' || s_[p] == '\r')) {
      ++p;
    }
    return s_.substr(p, 3) == "::=";
  }

  std::unique_ptr<Expr> parse_alternates(int depth) {
    if (depth > limits_.max_nesting_depth) {
      error("groups nested deeper than " + std::to_string(limits_.max_nesting_depth));
      return nullptr;
    }
    auto alt = Expr::make(Expr::Kind::kAlt);
    alt->children.push_back(parse_sequence(depth));
    while (status_.is_ok()) {
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == '|') {
        ++pos_;
        skip_space();
        alt->children.push_back(parse_sequence(depth));
      } else {
        break;
      }
    }
    if (alt->children.size() == 1) return std::move(alt->children[0]);
    return alt;
  }

  std::unique_ptr<Expr> parse_sequence(int depth) {
    auto seq = Expr::make(Expr::Kind::kSeq);
    while (status_.is_ok()) {
      skip_space();
      if (pos_ >= s_.size()) break;
      const char c = s_[pos_];
      if (c == '|' || c == ')') break;
      if (is_name_char(c) && at_rule_start()) break;
      auto item = parse_primary(depth);
      if (!status_.is_ok()) return nullptr;
      item = parse_postfix(std::move(item));
      if (!status_.is_ok()) return nullptr;
      seq->children.push_back(std::move(item));
    }
    return seq;
  }

  std::unique_ptr<Expr> parse_postfix(std::unique_ptr<Expr> item) {
    while (pos_ < s_.size() && status_.is_ok()) {
      int min = 0, max = -1;
      if (simple_quantifier(s_[pos_], &min, &max)) {
        ++pos_;
      } else if (s_[pos_] == '{') {
        if (!parse_braces(&min, &max)) return nullptr;
      } else {
        break;
      }
      item = Expr::repeat_of(std::move(item), min, max);
    }
    return item;
  }

  bool parse_number(int* out) { return read_repeat_count(s_, &pos_, out); }

  bool parse_braces(int* min, int* max) {
    ++pos_;  // '{'
    skip_space();
    int a = 0, b = -1;
    const bool has_a = parse_number(&a);
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      if (!has_a) return error("empty repetition '{}'");
      b = a;
    } else if (pos_ < s_.size() && s_[pos_] == ',') {
      ++pos_;
      skip_space();
      if (!parse_number(&b)) b = -1;
      skip_space();
      if (!has_a) a = 0;
    } else {
      return error("malformed repetition");
    }
    if (pos_ >= s_.size() || s_[pos_] != '}') return error("missing '}' in repetition");
    ++pos_;
    if (a > limits_.max_repeat || b > limits_.max_repeat) {
      return error("repetition count above the limit of " + std::to_string(limits_.max_repeat));
    }
    if (b >= 0 && a > b) return error("repetition has min > max");
    *min = a;
    *max = b;
    return true;
  }

  std::unique_ptr<Expr> parse_primary(int depth) {
    const char c = s_[pos_];
    if (c == '"') return parse_string();
    if (c == '[') return parse_class();
    if (c == '.') {
      ++pos_;
      return Expr::class_of(CodepointSet::all());
    }
    if (c == '(') {
      ++pos_;
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == '=') {
        error("lookahead assertions are not supported");
        return nullptr;
      }
      auto inner = parse_alternates(depth + 1);
      if (!status_.is_ok()) return nullptr;
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != ')') {
        error("missing ')'");
        return nullptr;
      }
      ++pos_;
      return inner;
    }
    if (is_name_char(c)) {
      const size_t at = pos_;
      auto ref = Expr::make(Expr::Kind::kRule);
      ref->text = parse_name();
      refs_.emplace_back(ref->text, at);
      return ref;
    }
    error(std::string("unexpected character '") + c + "'");
    return nullptr;
  }

  // One (possibly escaped) character of a string or class; false on error.
  bool parse_char(uint32_t* cp) {
    if (pos_ >= s_.size()) return error("unterminated string or class");
    if (s_[pos_] != '\\') {
      const size_t n = decode_utf8(std::string(s_.substr(pos_, 4)), 0, cp);
      if (n == 0) return error("invalid UTF-8");
      pos_ += n;
      return true;
    }
    if (pos_ + 1 >= s_.size()) return error("trailing backslash");
    const char e = s_[pos_ + 1];
    pos_ += 2;
    const auto hex = [&](size_t len) {
      if (pos_ + len > s_.size()) return false;
      uint32_t v = 0;
      for (size_t i = 0; i < len; ++i) {
        const char h = s_[pos_ + i];
        if (!std::isxdigit(static_cast<unsigned char>(h))) return false;
        v = v * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h))
                                               ? h - '0'
                                               : (std::tolower(h) - 'a' + 10));
      }
      pos_ += len;
      *cp = v;
      return true;
    };
    switch (e) {
      case 'n': *cp = '\n'; return true;
      case 'r': *cp = '\r'; return true;
      case 't': *cp = '\t'; return true;
      case 'f': *cp = '\f'; return true;
      case 'v': *cp = '\v'; return true;
      case 'b': *cp = '\b'; return true;
      case '0': *cp = 0; return true;
      case 'x':
        if (!hex(2)) return error("\\x needs two hex digits");
        return true;
      case 'u':
        if (!hex(4)) return error("\\u needs four hex digits");
        break;
      case 'U':
        if (!hex(8)) return error("\\U needs eight hex digits");
        break;
      default:
        if (std::isalnum(static_cast<unsigned char>(e))) {
          return error(std::string("unknown escape \\") + e);
        }
        *cp = static_cast<unsigned char>(e);
        return true;
    }
    if (*cp > kMaxCodePoint || (*cp >= 0xD800 && *cp <= 0xDFFF)) {
      return error("escape is not a Unicode scalar value");
    }
    return true;
  }

  std::unique_ptr<Expr> parse_string() {
    ++pos_;  // '"'
    std::string text;
    while (true) {
      if (pos_ >= s_.size() || s_[pos_] == '\n') {
        error("unterminated string");
        return nullptr;
      }
      if (s_[pos_] == '"') {
        ++pos_;
        break;
      }
      uint32_t cp = 0;
      if (!parse_char(&cp)) return nullptr;
      append_code_point(text, static_cast<char32_t>(cp));
    }
    return Expr::text_of(std::move(text));
  }

  std::unique_ptr<Expr> parse_class() {
    ++pos_;  // '['
    bool negated = false;
    if (pos_ < s_.size() && s_[pos_] == '^') {
      negated = true;
      ++pos_;
    }
    CodepointSet set;
    bool any = false;
    while (true) {
      if (pos_ >= s_.size()) {
        error("missing ']'");
        return nullptr;
      }
      if (s_[pos_] == ']') {
        ++pos_;
        break;
      }
      uint32_t lo = 0;
      if (!parse_char(&lo)) return nullptr;
      uint32_t hi = lo;
      if (pos_ + 1 < s_.size() && s_[pos_] == '-' && s_[pos_ + 1] != ']') {
        ++pos_;
        if (!parse_char(&hi)) return nullptr;
        if (hi < lo) {
          error("range out of order in character class");
          return nullptr;
        }
      }
      set.add(lo, hi);
      any = true;
    }
    if (!any) {
      error("empty character class");
      return nullptr;
    }
    return Expr::class_of(negated ? set.complement() : set);
  }

  std::string_view s_;
  const CompileLimits& limits_;
  size_t pos_ = 0;
  Status status_;
  std::map<std::string, std::unique_ptr<Expr>> defs_;
  std::vector<std::string> order_;
  std::vector<std::pair<std::string, size_t>> refs_;
};

}  // namespace

Result<Grammar> ebnf_to_grammar(std::string_view text, const CompileLimits& limits) {
  EbnfParser p(text, limits);
  return p.parse();
}

}  // namespace turbine::structured
