#include "chat/template_parser.h"

#include "common/utf8.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "chat/value.h"

namespace turbine::chat {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_word(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Line terminators after which a JavaScript /m regex `^` matches.
size_t line_terminator_length(std::string_view s, size_t i) {
  if (s[i] == '\n' || s[i] == '\r') return 1;
  if (s.substr(i, 3) == "\xE2\x80\xA8" || s.substr(i, 3) == "\xE2\x80\xA9") return 3;
  return 0;
}

size_t js_space_run(std::string_view s, size_t i) {
  size_t start = i;
  while (size_t len = js_space_length_at(s, i)) i += len;
  return i - start;
}

// `{% generation %}` / `{% endgeneration %}` markers (assistant-mask helpers) are dropped, with
// the surrounding white space unless the tag asks to strip it.
std::string remove_generation_tags(std::string_view s) {
  std::string out;
  size_t last_end = 0;
  size_t search = 0;
  while (true) {
    size_t p = s.find("{%", search);
    if (p == std::string_view::npos) break;
    size_t i = p + 2;
    bool lstrip = i < s.size() && s[i] == '-';
    if (lstrip) ++i;
    i += js_space_run(s, i);
    if (s.substr(i, 3) == "end") i += 3;
    if (s.substr(i, 10) != "generation") {
      search = p + 1;
      continue;
    }
    i += 10;
    i += js_space_run(s, i);
    bool rstrip = i < s.size() && s[i] == '-';
    if (rstrip) ++i;
    if (s.substr(i, 2) != "%}") {
      search = p + 1;
      continue;
    }
    i += 2;
    // White space before the tag (not already consumed by the previous match).
    size_t before = p;
    while (before > last_end) {
      size_t start = before - 1;
      while (start > last_end && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80 &&
             before - start < 4) {
        --start;
      }
      if (js_space_length_at(s, start) != before - start) break;
      before = start;
    }
    size_t after_end = i + js_space_run(s, i);
    out.append(s.substr(last_end, before - last_end));
    if (!lstrip) out.append(s.substr(before, p - before));
    if (!rstrip) out.append(s.substr(i, after_end - i));
    last_end = after_end;
    search = after_end;
  }
  out.append(s.substr(last_end));
  return out;
}

// The reference's preprocess(): drop one trailing newline, then lstrip_blocks and trim_blocks.
std::string preprocess(std::string_view source) {
  if (!source.empty() && source.back() == '\n') source.remove_suffix(1);
  // lstrip_blocks: /^[ \t]*({[#%-])/gm -> "$1"
  std::string lstripped;
  lstripped.reserve(source.size());
  bool line_start = true;
  size_t i = 0;
  while (i < source.size()) {
    if (line_start) {
      size_t j = i;
      while (j < source.size() && (source[j] == ' ' || source[j] == '\t')) ++j;
      if (j + 1 < source.size() && source[j] == '{' &&
          (source[j + 1] == '#' || source[j + 1] == '%' || source[j + 1] == '-')) {
        i = j;
      }
      line_start = false;
    }
    if (size_t len = line_terminator_length(source, i)) {
      lstripped.append(source.substr(i, len));
      i += len;
      line_start = true;
      continue;
    }
    lstripped.push_back(source[i++]);
  }
  // trim_blocks: /([#%-]})\n/g -> "$1"
  std::string trimmed;
  trimmed.reserve(lstripped.size());
  for (size_t k = 0; k < lstripped.size(); ++k) {
    char c = lstripped[k];
    if ((c == '#' || c == '%' || c == '-') && k + 2 < lstripped.size() && lstripped[k + 1] == '}' &&
        lstripped[k + 2] == '\n') {
      trimmed.push_back(c);
      trimmed.push_back('}');
      k += 2;
      continue;
    }
    trimmed.push_back(c);
  }
  return remove_generation_tags(trimmed);
}

struct MappedToken {
  std::string_view seq;
  TokenType type;
};

constexpr MappedToken kOrderedMappingTable[] = {
    {"{%", TokenType::kOpenStatement},
    {"%}", TokenType::kCloseStatement},
    {"{{", TokenType::kOpenExpression},
    {"}}", TokenType::kCloseExpression},
    {"(", TokenType::kOpenParen},
    {")", TokenType::kCloseParen},
    {"{", TokenType::kOpenCurlyBracket},
    {"}", TokenType::kCloseCurlyBracket},
    {"[", TokenType::kOpenSquareBracket},
    {"]", TokenType::kCloseSquareBracket},
    {",", TokenType::kComma},
    {".", TokenType::kDot},
    {":", TokenType::kColon},
    {"|", TokenType::kPipe},
    {"<=", TokenType::kComparisonOperator},
    {">=", TokenType::kComparisonOperator},
    {"==", TokenType::kComparisonOperator},
    {"!=", TokenType::kComparisonOperator},
    {"<", TokenType::kComparisonOperator},
    {">", TokenType::kComparisonOperator},
    {"+", TokenType::kAdditiveOperator},
    {"-", TokenType::kAdditiveOperator},
    {"~", TokenType::kAdditiveOperator},
    {"**", TokenType::kExponentOperator},
    {"*", TokenType::kMultiplicativeOperator},
    {"//", TokenType::kMultiplicativeOperator},
    {"/", TokenType::kMultiplicativeOperator},
    {"%", TokenType::kMultiplicativeOperator},
    {"=", TokenType::kEquals},
};

std::string line_info(std::string_view src, size_t offset) {
  offset = std::min(offset, src.size());
  size_t line = 1 + static_cast<size_t>(
                        std::count(src.begin(), src.begin() + static_cast<long>(offset), '\n'));
  return " (line " + std::to_string(line) + ")";
}

class Lexer {
 public:
  explicit Lexer(std::string src) : src_(std::move(src)) {}

  Result<std::vector<Token>> run() {
    while (pos_ < src_.size()) {
      TokenType last = tokens_.empty() ? TokenType::kEnd : tokens_.back().type;
      if (tokens_.empty() || last == TokenType::kCloseStatement ||
          last == TokenType::kCloseExpression || last == TokenType::kComment) {
        size_t start = pos_;
        while (pos_ < src_.size() &&
               !(src_[pos_] == '{' && pos_ + 1 < src_.size() &&
                 (src_[pos_ + 1] == '%' || src_[pos_ + 1] == '{' || src_[pos_ + 1] == '#'))) {
          ++pos_;
        }
        if (pos_ > start) {
          push(TokenType::kText, src_.substr(start, pos_ - start), start);
          continue;
        }
      }
      if (starts_with("{#")) {
        TURBINE_RETURN_IF_ERROR(comment());
        continue;
      }
      if (starts_with("{%-")) {
        strip_trailing_whitespace();
        push(TokenType::kOpenStatement, "{%", pos_);
        pos_ += 3;
        continue;
      }
      if (starts_with("{{-")) {
        strip_trailing_whitespace();
        push(TokenType::kOpenExpression, "{{", pos_);
        curly_depth_ = 0;
        pos_ += 3;
        continue;
      }
      skip_whitespace();
      if (pos_ >= src_.size()) return error("Unexpected end of input");
      if (starts_with("-%}")) {
        push(TokenType::kCloseStatement, "%}", pos_);
        pos_ += 3;
        skip_whitespace();
        continue;
      }
      if (starts_with("-}}")) {
        push(TokenType::kCloseExpression, "}}", pos_);
        pos_ += 3;
        skip_whitespace();
        continue;
      }
      char c = src_[pos_];
      if (c == '-' || c == '+') {
        if (tokens_.empty() || last == TokenType::kText) {
          return error(std::string("Unexpected character: ") + c);
        }
        bool binary = last == TokenType::kIdentifier || last == TokenType::kNumericLiteral ||
                      last == TokenType::kStringLiteral || last == TokenType::kCloseParen ||
                      last == TokenType::kCloseSquareBracket;
        if (!binary) {
          size_t start = pos_++;
          std::string num = digits();
          if (!num.empty() && pos_ + 1 < src_.size() && src_[pos_] == '.' &&
              is_digit(src_[pos_ + 1])) {
            ++pos_;
            num += "." + digits();
          }
          if (num.empty()) {
            push(TokenType::kUnaryOperator, std::string(1, c), start);
          } else {
            push(TokenType::kNumericLiteral, std::string(1, c) + num, start);
          }
          continue;
        }
      }
      bool mapped = false;
      for (const MappedToken& m : kOrderedMappingTable) {
        if (m.seq == "}}" && curly_depth_ > 0) continue;
        if (starts_with(m.seq)) {
          push(m.type, std::string(m.seq), pos_);
          if (m.type == TokenType::kOpenExpression) {
            curly_depth_ = 0;
          } else if (m.type == TokenType::kOpenCurlyBracket) {
            ++curly_depth_;
          } else if (m.type == TokenType::kCloseCurlyBracket) {
            --curly_depth_;
          }
          pos_ += m.seq.size();
          mapped = true;
          break;
        }
      }
      if (mapped) continue;
      if (c == '\'' || c == '"') {
        size_t start = pos_++;
        TURBINE_ASSIGN_OR_RETURN(std::string s, string_body(c));
        ++pos_;  // closing quote
        push(TokenType::kStringLiteral, std::move(s), start);
        continue;
      }
      if (is_digit(c)) {
        size_t start = pos_;
        std::string num = digits();
        bool after_dot = !tokens_.empty() && tokens_.back().type == TokenType::kDot;
        if (!after_dot && pos_ + 1 < src_.size() && src_[pos_] == '.' && is_digit(src_[pos_ + 1])) {
          ++pos_;
          num += "." + digits();
        }
        push(TokenType::kNumericLiteral, std::move(num), start);
        continue;
      }
      if (is_word(c)) {
        size_t start = pos_;
        while (pos_ < src_.size() && is_word(src_[pos_])) ++pos_;
        if (pos_ >= src_.size()) return error("Unexpected end of input");
        push(TokenType::kIdentifier, src_.substr(start, pos_ - start), start);
        continue;
      }
      return error(std::string("Unexpected character: ") + c);
    }
    return std::move(tokens_);
  }

  const std::string& source() const { return src_; }

 private:
  bool starts_with(std::string_view s) const {
    return std::string_view(src_).substr(pos_, s.size()) == s;
  }
  void push(TokenType t, std::string v, size_t offset) {
    tokens_.push_back(Token{t, std::move(v), offset});
  }
  Status error(std::string msg) const {
    return invalid_argument("chat template syntax error: " + msg + line_info(src_, pos_));
  }
  void skip_whitespace() {
    while (size_t len = js_space_length_at(src_, pos_)) pos_ += len;
  }
  void strip_trailing_whitespace() {
    if (!tokens_.empty() && tokens_.back().type == TokenType::kText) {
      std::string& v = tokens_.back().value;
      v.resize(js_trim_end(v).size());
      if (v.empty()) tokens_.pop_back();
    }
  }
  std::string digits() {
    size_t start = pos_;
    while (pos_ < src_.size() && is_digit(src_[pos_])) ++pos_;
    return src_.substr(start, pos_ - start);
  }
  Status comment() {
    size_t start = pos_;
    pos_ += 2;
    bool strip_before = pos_ < src_.size() && src_[pos_] == '-';
    if (strip_before) ++pos_;
    size_t body_start = pos_;
    while (!(pos_ + 1 < src_.size() && src_[pos_] == '#' && src_[pos_ + 1] == '}')) {
      if (pos_ + 2 >= src_.size()) {
        pos_ = start;
        return error("Missing end of comment tag");
      }
      ++pos_;
    }
    std::string text = src_.substr(body_start, pos_ - body_start);
    bool strip_after = !text.empty() && text.back() == '-';
    if (strip_after) text.pop_back();
    if (strip_before) strip_trailing_whitespace();
    push(TokenType::kComment, std::move(text), start);
    pos_ += 2;
    if (strip_after) skip_whitespace();
    return Status::ok();
  }
  // The body of a string literal up to (not including) the closing quote, escapes resolved.
  Result<std::string> string_body(char quote) {
    std::string out;
    char16_t pending_high = 0;  // a \uD8xx waiting for its low half
    auto flush_high = [&]() {
      if (pending_high) append_code_point(out, pending_high);
      pending_high = 0;
    };
    while (true) {
      if (pos_ >= src_.size()) return error("Unexpected end of input");
      char c = src_[pos_];
      if (c == quote) break;
      if (c == '\\') {
        ++pos_;
        if (pos_ >= src_.size()) return error("Unexpected end of input");
        char e = src_[pos_++];
        if (e == 'x' || e == 'u') {
          size_t n = e == 'x' ? 2 : 4;
          if (pos_ + n > src_.size() ||
              !std::all_of(src_.begin() + static_cast<long>(pos_),
                           src_.begin() + static_cast<long>(pos_ + n), is_hex)) {
            return error("Invalid hexadecimal escape sequence");
          }
          unsigned unit = 0;
          std::from_chars(src_.data() + pos_, src_.data() + pos_ + n, unit, 16);
          pos_ += n;
          if (unit >= 0xDC00 && unit <= 0xDFFF && pending_high) {
            char32_t cp =
                0x10000 + ((static_cast<char32_t>(pending_high) - 0xD800) << 10) + (unit - 0xDC00);
            pending_high = 0;
            append_code_point(out, cp);
          } else {
            flush_high();
            if (unit >= 0xD800 && unit <= 0xDBFF) {
              pending_high = static_cast<char16_t>(unit);
            } else {
              append_code_point(out, unit);
            }
          }
          continue;
        }
        flush_high();
        switch (e) {
          case 'n': out.push_back('\n'); break;
          case 't': out.push_back('\t'); break;
          case 'r': out.push_back('\r'); break;
          case 'b': out.push_back('\b'); break;
          case 'f': out.push_back('\f'); break;
          case 'v': out.push_back('\v'); break;
          case '\'': out.push_back('\''); break;
          case '"': out.push_back('"'); break;
          case '\\': out.push_back('\\'); break;
          default: return error(std::string("Unexpected escaped character: ") + e);
        }
        continue;
      }
      flush_high();
      out.push_back(c);
      ++pos_;
      if (pos_ >= src_.size()) return error("Unexpected end of input");
    }
    flush_high();
    return out;
  }

  std::string src_;
  size_t pos_ = 0;
  int curly_depth_ = 0;
  std::vector<Token> tokens_;
};

// ---- parser -----------------------------------------------------------------------------------

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& src, const ParseLimits& limits)
      : tokens_(std::move(tokens)), src_(src), limits_(limits) {}

  Result<std::unique_ptr<Program>> run() {
    auto program = std::make_unique<Program>();
    while (current_ < tokens_.size()) {
      TURBINE_ASSIGN_OR_RETURN(NodePtr n, parse_any());
      program->body.push_back(std::move(n));
    }
    return program;
  }

 private:
  // Bounds recursion: every recursive parse step holds one.
  class NestingGuard {
   public:
    explicit NestingGuard(Parser& p) : p_(p) { ++p_.nesting_; }
    ~NestingGuard() { --p_.nesting_; }
    NestingGuard(const NestingGuard&) = delete;
    NestingGuard& operator=(const NestingGuard&) = delete;

   private:
    Parser& p_;
  };
  Status check_nesting() const {
    if (nesting_ > limits_.max_nesting) {
      return error("template nested deeper than " + std::to_string(limits_.max_nesting) +
                   " levels");
    }
    return Status::ok();
  }

  const Token& peek(size_t k = 0) const {
    static const Token kEnd{TokenType::kEnd, "", 0};
    return current_ + k < tokens_.size() ? tokens_[current_ + k] : kEnd;
  }
  bool is(TokenType t, size_t k = 0) const { return peek(k).type == t; }
  bool is_identifier(std::string_view name, size_t k = 0) const {
    return peek(k).type == TokenType::kIdentifier && peek(k).value == name;
  }
  bool is_statement(std::initializer_list<std::string_view> names) const {
    if (!is(TokenType::kOpenStatement) || !is(TokenType::kIdentifier, 1)) return false;
    return std::find(names.begin(), names.end(), peek(1).value) != names.end();
  }
  Status error(const std::string& msg) const {
    size_t offset = current_ < tokens_.size() ? tokens_[current_].offset : src_.size();
    return invalid_argument("chat template syntax error: " + msg + line_info(src_, offset));
  }
  static const char* type_name(TokenType t) {
    switch (t) {
      case TokenType::kText: return "text";
      case TokenType::kNumericLiteral: return "number";
      case TokenType::kStringLiteral: return "string";
      case TokenType::kIdentifier: return "identifier";
      case TokenType::kEquals: return "'='";
      case TokenType::kOpenParen: return "'('";
      case TokenType::kCloseParen: return "')'";
      case TokenType::kOpenStatement: return "'{%'";
      case TokenType::kCloseStatement: return "'%}'";
      case TokenType::kOpenExpression: return "'{{'";
      case TokenType::kCloseExpression: return "'}}'";
      case TokenType::kOpenSquareBracket: return "'['";
      case TokenType::kCloseSquareBracket: return "']'";
      case TokenType::kOpenCurlyBracket: return "'{'";
      case TokenType::kCloseCurlyBracket: return "'}'";
      case TokenType::kComma: return "','";
      case TokenType::kDot: return "'.'";
      case TokenType::kColon: return "':'";
      case TokenType::kPipe: return "'|'";
      case TokenType::kAdditiveOperator: return "operator";
      case TokenType::kMultiplicativeOperator: return "operator";
      case TokenType::kExponentOperator: return "'**'";
      case TokenType::kComparisonOperator: return "comparison";
      case TokenType::kUnaryOperator: return "unary operator";
      case TokenType::kComment: return "comment";
      case TokenType::kEnd: return "end of template";
    }
    return "token";
  }
  Result<Token> expect(TokenType t, const char* what) {
    if (!is(t)) {
      return error(std::string("expected ") + what + ", got " + type_name(peek().type));
    }
    return tokens_[current_++];
  }
  Status expect_identifier(std::string_view name) {
    if (!is_identifier(name)) return error("expected '" + std::string(name) + "'");
    ++current_;
    return Status::ok();
  }
  // Closes a block: `{% endX %}`.
  Status expect_end(std::string_view name) {
    TURBINE_RETURN_IF_ERROR(expect(TokenType::kOpenStatement, "'{%'").status());
    TURBINE_RETURN_IF_ERROR(expect_identifier(name));
    return expect(TokenType::kCloseStatement, "'%}'").status();
  }
  NodePtr make(NodeKind k) { return std::make_unique<Node>(k); }
  // Sets the node's height from its expression children and enforces the limit.
  Result<NodePtr> finish(NodePtr n) {
    int d = 0;
    for (const NodePtr* child : {&n->a, &n->b, &n->c}) {
      if (*child) d = std::max(d, (*child)->depth);
    }
    for (const NodePtr& child : n->list) d = std::max(d, child->depth);
    for (const auto& [k, v] : n->pairs) d = std::max({d, k->depth, v->depth});
    n->depth = d + 1;
    if (n->depth > limits_.max_expression_depth) {
      return error("expression nested deeper than " + std::to_string(limits_.max_expression_depth) +
                   " levels");
    }
    return n;
  }
  // Collects statements until one of `names` opens a tag.
  Result<NodeList> parse_until(std::initializer_list<std::string_view> names) {
    NodeList out;
    while (!is_statement(names)) {
      if (is(TokenType::kEnd)) {
        std::string list;
        for (std::string_view n : names) list += (list.empty() ? "" : "/") + std::string(n);
        return error("unexpected end of template: missing {% " + list + " %}");
      }
      TURBINE_ASSIGN_OR_RETURN(NodePtr n, parse_any());
      out.push_back(std::move(n));
    }
    return out;
  }

  Result<NodePtr> parse_any() {
    NestingGuard guard(*this);
    TURBINE_RETURN_IF_ERROR(check_nesting());
    switch (peek().type) {
      case TokenType::kComment: {
        auto n = make(NodeKind::kComment);
        n->text = tokens_[current_++].value;
        return n;
      }
      case TokenType::kText: {
        auto n = make(NodeKind::kText);
        n->text = tokens_[current_++].value;
        return n;
      }
      case TokenType::kOpenStatement: return parse_statement();
      case TokenType::kOpenExpression: {
        ++current_;
        TURBINE_ASSIGN_OR_RETURN(NodePtr e, parse_expression());
        TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseExpression, "'}}'").status());
        return e;
      }
      default: return error(std::string("unexpected ") + type_name(peek().type));
    }
  }

  Result<NodePtr> parse_statement() {
    ++current_;  // {%
    if (!is(TokenType::kIdentifier)) {
      return error(std::string("unknown statement, got ") + type_name(peek().type));
    }
    const std::string name = peek().value;
    ++current_;
    if (name == "set") return parse_set();
    if (name == "if") {
      TURBINE_ASSIGN_OR_RETURN(NodePtr n, parse_if());
      TURBINE_RETURN_IF_ERROR(expect_end("endif"));
      return n;
    }
    if (name == "for") {
      TURBINE_ASSIGN_OR_RETURN(NodePtr n, parse_for());
      TURBINE_RETURN_IF_ERROR(expect_end("endfor"));
      return n;
    }
    if (name == "macro") {
      TURBINE_ASSIGN_OR_RETURN(NodePtr n, parse_macro());
      TURBINE_RETURN_IF_ERROR(expect_end("endmacro"));
      return n;
    }
    if (name == "break" || name == "continue") {
      TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
      return make(name == "break" ? NodeKind::kBreak : NodeKind::kContinue);
    }
    if (name == "filter") {
      auto n = make(NodeKind::kFilterBlock);
      TURBINE_ASSIGN_OR_RETURN(n->a, parse_filter_node());
      TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
      TURBINE_ASSIGN_OR_RETURN(n->body, parse_until({"endfilter"}));
      TURBINE_RETURN_IF_ERROR(expect_end("endfilter"));
      return n;
    }
    --current_;
    return error("unknown statement '" + name + "'");
  }

  Result<NodePtr> parse_set() {
    auto n = make(NodeKind::kSet);
    TURBINE_ASSIGN_OR_RETURN(n->a, parse_expression_sequence(false));
    if (is(TokenType::kEquals)) {
      ++current_;
      TURBINE_ASSIGN_OR_RETURN(n->b, parse_expression_sequence(false));
    } else {
      TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
      TURBINE_ASSIGN_OR_RETURN(n->body, parse_until({"endset"}));
      TURBINE_RETURN_IF_ERROR(expect(TokenType::kOpenStatement, "'{%'").status());
      TURBINE_RETURN_IF_ERROR(expect_identifier("endset"));
    }
    TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
    return n;
  }

  // After `{% if` / `{% elif`; leaves `{% endif %}` to the caller.
  Result<NodePtr> parse_if() {
    NestingGuard guard(*this);
    TURBINE_RETURN_IF_ERROR(check_nesting());
    auto n = make(NodeKind::kIf);
    TURBINE_ASSIGN_OR_RETURN(n->a, parse_expression());
    TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
    TURBINE_ASSIGN_OR_RETURN(n->body, parse_until({"elif", "else", "endif"}));
    if (is_statement({"elif"})) {
      current_ += 2;
      TURBINE_ASSIGN_OR_RETURN(NodePtr elif, parse_if());
      n->alternate.push_back(std::move(elif));
    } else if (is_statement({"else"})) {
      current_ += 2;
      TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
      TURBINE_ASSIGN_OR_RETURN(n->alternate, parse_until({"endif"}));
    }
    return n;
  }

  Result<NodePtr> parse_for() {
    auto n = make(NodeKind::kFor);
    TURBINE_ASSIGN_OR_RETURN(n->a, parse_expression_sequence(true));
    if (n->a->kind != NodeKind::kIdentifier && n->a->kind != NodeKind::kTuple) {
      return error("expected identifier/tuple for the loop variable");
    }
    if (!is_identifier("in")) return error("expected 'in' after the loop variable");
    ++current_;
    TURBINE_ASSIGN_OR_RETURN(n->b, parse_expression());
    TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
    TURBINE_ASSIGN_OR_RETURN(n->body, parse_until({"endfor", "else"}));
    if (is_statement({"else"})) {
      current_ += 2;
      TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
      TURBINE_ASSIGN_OR_RETURN(n->alternate, parse_until({"endfor"}));
    }
    return n;
  }

  Result<NodePtr> parse_macro() {
    auto n = make(NodeKind::kMacro);
    TURBINE_ASSIGN_OR_RETURN(NodePtr name, parse_primary());
    if (name->kind != NodeKind::kIdentifier) return error("expected identifier after 'macro'");
    n->text = name->text;
    TURBINE_ASSIGN_OR_RETURN(n->list, parse_args(true));
    TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseStatement, "'%}'").status());
    TURBINE_ASSIGN_OR_RETURN(n->body, parse_until({"endmacro"}));
    bool declares_varargs = false, declares_kwargs = false;
    for (const NodePtr& p : n->list) {
      declares_varargs |= p->text == "varargs";  // identifier or keyword parameter name
      declares_kwargs |= p->text == "kwargs";
    }
    n->uses_varargs = !declares_varargs && mentions(n->body, "varargs");
    n->uses_kwargs = !declares_kwargs && mentions(n->body, "kwargs");
    return n;
  }

  // Whether an identifier named `name` appears anywhere below (tree height is bounded).
  static bool mentions(const NodeList& nodes, std::string_view name) {
    for (const NodePtr& n : nodes) {
      if (mentions(n.get(), name)) return true;
    }
    return false;
  }
  static bool mentions(const Node* n, std::string_view name) {
    if (!n) return false;
    if (n->kind == NodeKind::kIdentifier && n->text == name) return true;
    if (mentions(n->a.get(), name) || mentions(n->b.get(), name) || mentions(n->c.get(), name)) {
      return true;
    }
    if (mentions(n->list, name) || mentions(n->body, name) || mentions(n->alternate, name)) {
      return true;
    }
    for (const auto& [k, v] : n->pairs) {
      if (mentions(k.get(), name) || mentions(v.get(), name)) return true;
    }
    return false;
  }

  Result<NodePtr> parse_expression_sequence(bool primary) {
    NodeList items;
    {
      auto first = primary ? parse_primary() : parse_expression();
      if (!first) return first.status();
      items.push_back(std::move(first).value());
    }
    if (!is(TokenType::kComma)) return std::move(items.front());
    while (is(TokenType::kComma)) {
      ++current_;
      auto next = primary ? parse_primary() : parse_expression();
      if (!next) return next.status();
      items.push_back(std::move(next).value());
    }
    auto t = make(NodeKind::kTuple);
    t->list = std::move(items);
    return finish(std::move(t));
  }

  Result<NodePtr> parse_expression() { return parse_if_expression(); }

  Result<NodePtr> parse_if_expression() {
    NestingGuard guard(*this);
    TURBINE_RETURN_IF_ERROR(check_nesting());
    TURBINE_ASSIGN_OR_RETURN(NodePtr value, parse_or());
    if (!is_identifier("if")) return value;
    ++current_;
    TURBINE_ASSIGN_OR_RETURN(NodePtr test, parse_or());
    if (is_identifier("else")) {
      ++current_;
      auto n = make(NodeKind::kTernary);
      n->a = std::move(test);
      n->b = std::move(value);
      TURBINE_ASSIGN_OR_RETURN(n->c, parse_if_expression());
      return finish(std::move(n));
    }
    auto n = make(NodeKind::kSelect);
    n->a = std::move(value);
    n->b = std::move(test);
    return finish(std::move(n));
  }

  Result<NodePtr> binary(std::string op, NodePtr left, NodePtr right) {
    auto n = make(NodeKind::kBinary);
    n->text = std::move(op);
    n->a = std::move(left);
    n->b = std::move(right);
    return finish(std::move(n));
  }

  Result<NodePtr> parse_or() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr left, parse_and());
    while (is_identifier("or")) {
      ++current_;
      TURBINE_ASSIGN_OR_RETURN(NodePtr right, parse_and());
      TURBINE_ASSIGN_OR_RETURN(left, binary("or", std::move(left), std::move(right)));
    }
    return left;
  }

  Result<NodePtr> parse_and() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr left, parse_not());
    while (is_identifier("and")) {
      ++current_;
      TURBINE_ASSIGN_OR_RETURN(NodePtr right, parse_not());
      TURBINE_ASSIGN_OR_RETURN(left, binary("and", std::move(left), std::move(right)));
    }
    return left;
  }

  Result<NodePtr> parse_not() {
    NestingGuard guard(*this);
    TURBINE_RETURN_IF_ERROR(check_nesting());
    NodePtr result;
    // Mirrors the reference: `not a not b` keeps only the last operand.
    while (is_identifier("not")) {
      ++current_;
      auto n = make(NodeKind::kUnary);
      n->text = "not";
      TURBINE_ASSIGN_OR_RETURN(n->a, parse_not());
      TURBINE_ASSIGN_OR_RETURN(result, finish(std::move(n)));
    }
    if (result) return result;
    return parse_comparison();
  }

  Result<NodePtr> parse_comparison() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr left, parse_additive());
    while (true) {
      std::string op;
      if (is_identifier("not") && is_identifier("in", 1)) {
        op = "not in";
        current_ += 2;
      } else if (is_identifier("in")) {
        op = "in";
        ++current_;
      } else if (is(TokenType::kComparisonOperator)) {
        op = tokens_[current_++].value;
      } else {
        break;
      }
      TURBINE_ASSIGN_OR_RETURN(NodePtr right, parse_additive());
      TURBINE_ASSIGN_OR_RETURN(left, binary(op, std::move(left), std::move(right)));
    }
    return left;
  }

  Result<NodePtr> parse_additive() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr left, parse_multiplicative());
    while (is(TokenType::kAdditiveOperator)) {
      std::string op = tokens_[current_++].value;
      TURBINE_ASSIGN_OR_RETURN(NodePtr right, parse_multiplicative());
      TURBINE_ASSIGN_OR_RETURN(left, binary(op, std::move(left), std::move(right)));
    }
    return left;
  }

  Result<NodePtr> parse_multiplicative() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr left, parse_power());
    while (is(TokenType::kMultiplicativeOperator)) {
      std::string op = tokens_[current_++].value;
      TURBINE_ASSIGN_OR_RETURN(NodePtr right, parse_power());
      TURBINE_ASSIGN_OR_RETURN(left, binary(op, std::move(left), std::move(right)));
    }
    return left;
  }

  Result<NodePtr> parse_power() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr left, parse_test());
    while (is(TokenType::kExponentOperator)) {
      ++current_;
      TURBINE_ASSIGN_OR_RETURN(NodePtr right, parse_test());
      TURBINE_ASSIGN_OR_RETURN(left, binary("**", std::move(left), std::move(right)));
    }
    return left;
  }

  Result<NodePtr> parse_test() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr operand, parse_filter());
    while (is_identifier("is")) {
      ++current_;
      auto n = make(NodeKind::kTest);
      if (is_identifier("not")) {
        n->flag = true;
        ++current_;
      }
      if (!is(TokenType::kIdentifier)) return error("expected identifier for the test");
      n->text = tokens_[current_++].value;
      // Extension over the reference: `x is equalto(y)`.
      if (is(TokenType::kOpenParen)) {
        TURBINE_ASSIGN_OR_RETURN(n->list, parse_args(false));
      }
      n->a = std::move(operand);
      TURBINE_ASSIGN_OR_RETURN(operand, finish(std::move(n)));
    }
    return operand;
  }

  // `name` or `name(args)` after `|` or `{% filter`.
  Result<NodePtr> parse_filter_node() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr filter, parse_primary());
    if (filter->kind != NodeKind::kIdentifier) return error("expected identifier for the filter");
    if (is(TokenType::kOpenParen)) {
      auto call = make(NodeKind::kCall);
      call->a = std::move(filter);
      TURBINE_ASSIGN_OR_RETURN(call->list, parse_args(false));
      TURBINE_ASSIGN_OR_RETURN(filter, finish(std::move(call)));
    }
    return filter;
  }

  Result<NodePtr> parse_filter() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr operand, parse_unary_sign());
    while (is(TokenType::kPipe)) {
      ++current_;
      auto n = make(NodeKind::kFilter);
      TURBINE_ASSIGN_OR_RETURN(n->b, parse_filter_node());
      n->a = std::move(operand);
      TURBINE_ASSIGN_OR_RETURN(operand, finish(std::move(n)));
    }
    return operand;
  }

  Result<NodePtr> parse_unary_sign() {
    NestingGuard guard(*this);
    TURBINE_RETURN_IF_ERROR(check_nesting());
    const Token& t = peek();
    if ((t.type == TokenType::kUnaryOperator || t.type == TokenType::kAdditiveOperator) &&
        (t.value == "-" || t.value == "+")) {
      auto n = make(NodeKind::kUnary);
      n->text = tokens_[current_++].value;
      TURBINE_ASSIGN_OR_RETURN(n->a, parse_unary_sign());
      return finish(std::move(n));
    }
    return parse_call_member();
  }

  Result<NodePtr> parse_call_member() {
    TURBINE_ASSIGN_OR_RETURN(NodePtr primary, parse_primary());
    TURBINE_ASSIGN_OR_RETURN(NodePtr member, parse_member(std::move(primary)));
    while (is(TokenType::kOpenParen)) {
      auto call = make(NodeKind::kCall);
      call->a = std::move(member);
      TURBINE_ASSIGN_OR_RETURN(call->list, parse_args(false));
      TURBINE_ASSIGN_OR_RETURN(NodePtr done, finish(std::move(call)));
      TURBINE_ASSIGN_OR_RETURN(member, parse_member(std::move(done)));
    }
    return member;
  }

  // `(a, b=1, *c, **d)`; `parameters` for macro declarations.
  Result<NodeList> parse_args(bool parameters) {
    TURBINE_RETURN_IF_ERROR(expect(TokenType::kOpenParen, "'('").status());
    NodeList args;
    bool saw_keyword = false;
    bool saw_spread = false;
    std::vector<std::string> names;
    while (!is(TokenType::kCloseParen)) {
      if (is(TokenType::kEnd)) return error("expected ')'");
      bool keyword_spread = is(TokenType::kExponentOperator);
      bool positional_spread = is(TokenType::kMultiplicativeOperator) && peek().value == "*";
      if (parameters && (keyword_spread || positional_spread)) {
        return error("argument unpacking is not allowed in parameter declarations");
      }
      if (keyword_spread) {
        ++current_;
        auto n = make(NodeKind::kKeywordSpread);
        TURBINE_ASSIGN_OR_RETURN(n->a, parse_expression());
        TURBINE_ASSIGN_OR_RETURN(NodePtr done, finish(std::move(n)));
        args.push_back(std::move(done));
        if (is(TokenType::kComma)) ++current_;
        if (!is(TokenType::kCloseParen)) return error("`**` must be applied to the final argument");
        break;
      }
      NodePtr arg;
      if (positional_spread) {
        if (saw_spread) return error("only one `*` argument unpacking is allowed");
        saw_spread = true;
        ++current_;
        auto n = make(NodeKind::kSpread);
        TURBINE_ASSIGN_OR_RETURN(n->a, parse_expression());
        TURBINE_ASSIGN_OR_RETURN(arg, finish(std::move(n)));
      } else {
        TURBINE_ASSIGN_OR_RETURN(arg, parse_expression());
        if (is(TokenType::kEquals)) {
          ++current_;
          if (arg->kind != NodeKind::kIdentifier)
            return error("expected identifier for keyword argument");
          auto kw = make(NodeKind::kKeywordArg);
          kw->text = arg->text;
          TURBINE_ASSIGN_OR_RETURN(kw->a, parse_expression());
          TURBINE_ASSIGN_OR_RETURN(arg, finish(std::move(kw)));
        }
        if (parameters) {
          if (arg->kind != NodeKind::kIdentifier && arg->kind != NodeKind::kKeywordArg) {
            return error("expected identifier for parameter declaration");
          }
          if (std::find(names.begin(), names.end(), arg->text) != names.end()) {
            return error("duplicate parameter name: " + arg->text);
          }
          names.push_back(arg->text);
        }
        if (arg->kind == NodeKind::kKeywordArg) {
          saw_keyword = true;
        } else if (saw_keyword) {
          return error(parameters ? "non-default argument follows default argument"
                                  : "positional arguments must come before keyword arguments");
        } else if (saw_spread) {
          return error("positional arguments must not follow `*` argument unpacking");
        }
      }
      args.push_back(std::move(arg));
      if (is(TokenType::kComma)) ++current_;
    }
    ++current_;  // )
    return args;
  }

  Result<NodePtr> parse_subscript() {
    bool is_slice = false;
    NodePtr parts[3];
    size_t count = 0;
    while (!is(TokenType::kCloseSquareBracket)) {
      if (is(TokenType::kEnd)) return error("expected ']'");
      if (count >= 3) return error("expected 0-3 arguments for slice expression");
      if (is(TokenType::kColon)) {
        ++count;
        ++current_;
        is_slice = true;
      } else {
        TURBINE_ASSIGN_OR_RETURN(parts[count], parse_expression());
        ++count;
        if (is(TokenType::kColon)) {
          ++current_;
          is_slice = true;
        }
      }
    }
    if (count == 0) return error("expected at least one argument for member/slice expression");
    if (!is_slice) return std::move(parts[0]);
    auto n = make(NodeKind::kSlice);
    n->a = std::move(parts[0]);
    n->b = std::move(parts[1]);
    n->c = std::move(parts[2]);
    return finish(std::move(n));
  }

  Result<NodePtr> parse_member(NodePtr object) {
    while (is(TokenType::kDot) || is(TokenType::kOpenSquareBracket)) {
      bool computed = is(TokenType::kOpenSquareBracket);
      ++current_;
      auto n = make(NodeKind::kMember);
      n->flag = computed;
      if (computed) {
        TURBINE_ASSIGN_OR_RETURN(n->b, parse_subscript());
        TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseSquareBracket, "']'").status());
      } else {
        TURBINE_ASSIGN_OR_RETURN(n->b, parse_primary());
        if (n->b->kind != NodeKind::kIdentifier && n->b->kind != NodeKind::kInteger) {
          return error("expected identifier or integer following '.'");
        }
      }
      n->a = std::move(object);
      TURBINE_ASSIGN_OR_RETURN(object, finish(std::move(n)));
    }
    return object;
  }

  Result<NodePtr> parse_primary() {
    if (is(TokenType::kEnd)) return error("unexpected end of template");
    const Token& t = tokens_[current_++];
    switch (t.type) {
      case TokenType::kNumericLiteral: {
        bool is_float = t.value.find('.') != std::string::npos;
        auto n = make(is_float ? NodeKind::kFloat : NodeKind::kInteger);
        n->number = std::strtod(t.value.c_str(), nullptr);
        return n;
      }
      case TokenType::kStringLiteral: {
        auto n = make(NodeKind::kString);
        n->text = t.value;
        while (is(TokenType::kStringLiteral)) n->text += tokens_[current_++].value;
        return n;
      }
      case TokenType::kIdentifier: {
        auto n = make(NodeKind::kIdentifier);
        n->text = t.value;
        return n;
      }
      case TokenType::kOpenParen: {
        TURBINE_ASSIGN_OR_RETURN(NodePtr e, parse_expression_sequence(false));
        TURBINE_RETURN_IF_ERROR(expect(TokenType::kCloseParen, "')'").status());
        return e;
      }
      case TokenType::kOpenSquareBracket: {
        auto n = make(NodeKind::kArray);
        while (!is(TokenType::kCloseSquareBracket)) {
          TURBINE_ASSIGN_OR_RETURN(NodePtr e, parse_expression());
          n->list.push_back(std::move(e));
          if (is(TokenType::kComma)) ++current_;
        }
        ++current_;
        return finish(std::move(n));
      }
      case TokenType::kOpenCurlyBracket: {
        auto n = make(NodeKind::kObjectLit);
        while (!is(TokenType::kCloseCurlyBracket)) {
          TURBINE_ASSIGN_OR_RETURN(NodePtr key, parse_expression());
          TURBINE_RETURN_IF_ERROR(expect(TokenType::kColon, "':' in object literal").status());
          TURBINE_ASSIGN_OR_RETURN(NodePtr value, parse_expression());
          n->pairs.emplace_back(std::move(key), std::move(value));
          if (is(TokenType::kComma)) ++current_;
        }
        ++current_;
        return finish(std::move(n));
      }
      default: --current_; return error(std::string("unexpected ") + type_name(t.type));
    }
  }

  std::vector<Token> tokens_;
  const std::string& src_;
  const ParseLimits& limits_;
  size_t current_ = 0;
  int nesting_ = 0;
};

}  // namespace

Result<std::vector<Token>> tokenize_template(std::string_view source) {
  Lexer lexer(preprocess(source));
  return lexer.run();
}

Result<std::unique_ptr<Program>> parse_template(std::string_view source,
                                                const ParseLimits& limits) {
  std::string src = preprocess(source);
  Lexer lexer(src);
  TURBINE_ASSIGN_OR_RETURN(std::vector<Token> tokens, lexer.run());
  Parser parser(std::move(tokens), src, limits);
  return parser.run();
}

}  // namespace turbine::chat
