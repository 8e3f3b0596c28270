// The template lexer: @huggingface/jinja's preprocessing (generation tags, lstrip/trim of
// blocks) and tokenizing, split from the parser (template_parser.cpp).
#include "chat/template_lexer.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "chat/value.h"
#include "common/utf8.h"

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

}  // namespace

std::string preprocess_template(std::string_view source) {
  return preprocess(source);
}

Result<std::vector<Token>> lex_template(std::string preprocessed) {
  Lexer lexer(std::move(preprocessed));
  return lexer.run();
}

std::string template_line_info(std::string_view src, size_t offset) {
  return line_info(src, offset);
}

Result<std::vector<Token>> tokenize_template(std::string_view source) {
  return lex_template(preprocess(source));
}

}  // namespace turbine::chat
