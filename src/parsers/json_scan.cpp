#include "parsers/json_scan.h"

#include "common/utf8.h"

namespace turbine::parsers {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

uint32_t hex_value(char c) {
  if (is_digit(c)) return static_cast<uint32_t>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<uint32_t>(c - 'a' + 10);
  return static_cast<uint32_t>(c - 'A' + 10);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// JsonScanner

JsonScanner::Step JsonScanner::value_done() {
  if (stack_.empty()) {
    state_ = State::kDone;
    return Step::kDone;
  }
  state_ = State::kAfter;
  return Step::kMore;
}

JsonScanner::Step JsonScanner::begin_value(char c) {
  started_ = true;
  switch (c) {
    case '{':
      if (static_cast<int>(stack_.size()) >= kMaxDepth) return Step::kError;
      stack_.push_back('{');
      state_ = State::kObjectFirst;
      return Step::kMore;
    case '[':
      if (static_cast<int>(stack_.size()) >= kMaxDepth) return Step::kError;
      stack_.push_back('[');
      state_ = State::kArrayFirst;
      return Step::kMore;
    case '"':
      key_ = false;
      state_ = State::kString;
      return Step::kMore;
    case '-': state_ = State::kNumMinus; return Step::kMore;
    case '0': state_ = State::kNumZero; return Step::kMore;
    case 't': literal_ = "true"; break;
    case 'f': literal_ = "false"; break;
    case 'n': literal_ = "null"; break;
    default:
      if (c >= '1' && c <= '9') {
        state_ = State::kNumInt;
        return Step::kMore;
      }
      return Step::kError;
  }
  literal_pos_ = 1;
  state_ = State::kLiteral;
  return Step::kMore;
}

JsonScanner::Step JsonScanner::feed(char c) {
  switch (state_) {
    case State::kDone: return Step::kError;
    case State::kValue:
      if (is_json_space(c)) return Step::kMore;
      return begin_value(c);
    case State::kArrayFirst:
      if (is_json_space(c)) return Step::kMore;
      if (c == ']') {
        stack_.pop_back();
        return value_done();
      }
      return begin_value(c);
    case State::kObjectFirst:
    case State::kObjectKey:
      if (is_json_space(c)) return Step::kMore;
      if (c == '"') {
        key_ = true;
        state_ = State::kString;
        return Step::kMore;
      }
      if (c == '}' && state_ == State::kObjectFirst) {
        stack_.pop_back();
        return value_done();
      }
      return Step::kError;
    case State::kColon:
      if (is_json_space(c)) return Step::kMore;
      if (c != ':') return Step::kError;
      state_ = State::kValue;
      return Step::kMore;
    case State::kAfter:
      if (is_json_space(c)) return Step::kMore;
      if (c == ',') {
        state_ = stack_.back() == '{' ? State::kObjectKey : State::kValue;
        return Step::kMore;
      }
      if ((c == '}' && stack_.back() == '{') || (c == ']' && stack_.back() == '[')) {
        stack_.pop_back();
        return value_done();
      }
      return Step::kError;
    case State::kString:
      if (c == '"') {
        if (key_) {
          state_ = State::kColon;
          return Step::kMore;
        }
        return value_done();
      }
      if (c == '\\') state_ = State::kEscape;
      return Step::kMore;
    case State::kEscape:
      switch (c) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't': state_ = State::kString; return Step::kMore;
        case 'u':
          hex_left_ = 4;
          state_ = State::kHex;
          return Step::kMore;
        default: return Step::kError;
      }
    case State::kHex:
      if (!is_hex(c)) return Step::kError;
      if (--hex_left_ == 0) state_ = State::kString;
      return Step::kMore;
    case State::kLiteral:
      if (c != literal_[literal_pos_]) return Step::kError;
      if (literal_[++literal_pos_] == '\0') return value_done();
      return Step::kMore;
    case State::kNumMinus:
      if (c == '0') {
        state_ = State::kNumZero;
        return Step::kMore;
      }
      if (c >= '1' && c <= '9') {
        state_ = State::kNumInt;
        return Step::kMore;
      }
      return Step::kError;
    case State::kNumInt:
      if (is_digit(c)) return Step::kMore;
      [[fallthrough]];
    case State::kNumZero:
      if (c == '.') {
        state_ = State::kNumDot;
        return Step::kMore;
      }
      if (c == 'e' || c == 'E') {
        state_ = State::kNumExp;
        return Step::kMore;
      }
      break;  // the number ended before c
    case State::kNumDot:
      if (!is_digit(c)) return Step::kError;
      state_ = State::kNumFrac;
      return Step::kMore;
    case State::kNumFrac:
      if (is_digit(c)) return Step::kMore;
      if (c == 'e' || c == 'E') {
        state_ = State::kNumExp;
        return Step::kMore;
      }
      break;
    case State::kNumExp:
      if (c == '+' || c == '-') {
        state_ = State::kNumExpSign;
        return Step::kMore;
      }
      [[fallthrough]];
    case State::kNumExpSign:
      if (!is_digit(c)) return Step::kError;
      state_ = State::kNumExpDigits;
      return Step::kMore;
    case State::kNumExpDigits:
      if (is_digit(c)) return Step::kMore;
      break;
  }
  // A complete number ended before `c`.
  if (stack_.empty()) {
    state_ = State::kDone;
    return Step::kDoneBefore;
  }
  state_ = State::kAfter;
  return feed(c);
}

bool JsonScanner::complete_at_end() const {
  if (state_ == State::kDone) return true;
  if (!stack_.empty()) return false;
  return state_ == State::kNumZero || state_ == State::kNumInt || state_ == State::kNumFrac ||
         state_ == State::kNumExpDigits;
}

bool JsonScanner::in_string() const {
  return state_ == State::kString || state_ == State::kEscape || state_ == State::kHex;
}

// ---------------------------------------------------------------------------------------------
// JsonStringDecoder

JsonStringDecoder::Step JsonStringDecoder::feed(char c, std::string& out) {
  const auto flush_surrogate = [&] {
    if (high_surrogate_ != 0) {
      append_code_point(out, 0xFFFD);
      high_surrogate_ = 0;
    }
  };
  switch (state_) {
    case State::kDone: return Step::kError;
    case State::kChars:
      if (c == '\\') {
        state_ = State::kEscape;
        return Step::kMore;
      }
      flush_surrogate();
      if (c == '"') {
        state_ = State::kDone;
        return Step::kDone;
      }
      out.push_back(c);
      return Step::kMore;
    case State::kEscape: {
      char decoded = 0;
      switch (c) {
        case '"': decoded = '"'; break;
        case '\\': decoded = '\\'; break;
        case '/': decoded = '/'; break;
        case 'b': decoded = '\b'; break;
        case 'f': decoded = '\f'; break;
        case 'n': decoded = '\n'; break;
        case 'r': decoded = '\r'; break;
        case 't': decoded = '\t'; break;
        case 'u':
          state_ = State::kHex;
          hex_left_ = 4;
          code_ = 0;
          return Step::kMore;
        default: return Step::kError;
      }
      flush_surrogate();
      out.push_back(decoded);
      state_ = State::kChars;
      return Step::kMore;
    }
    case State::kHex:
      if (!is_hex(c)) return Step::kError;
      code_ = code_ * 16 + hex_value(c);
      if (--hex_left_ > 0) return Step::kMore;
      state_ = State::kChars;
      if (code_ >= 0xD800 && code_ <= 0xDBFF) {
        flush_surrogate();
        high_surrogate_ = code_;
      } else if (code_ >= 0xDC00 && code_ <= 0xDFFF) {
        if (high_surrogate_ != 0) {
          append_code_point(out, 0x10000 + ((high_surrogate_ - 0xD800) << 10) + (code_ - 0xDC00));
          high_surrogate_ = 0;
        } else {
          append_code_point(out, 0xFFFD);
        }
      } else {
        flush_surrogate();
        append_code_point(out, code_);
      }
      return Step::kMore;
  }
  return Step::kError;
}

// ---------------------------------------------------------------------------------------------
// ArgumentsScanner

ArgumentsScanner::Step ArgumentsScanner::feed(char c, std::string& out) {
  switch (mode_) {
    case Mode::kDone: return Step::kError;
    case Mode::kWaiting:
      if (is_json_space(c)) return Step::kMore;
      if (c == '"') {
        mode_ = Mode::kString;
        return Step::kMore;
      }
      if (c != '{') return Step::kError;
      mode_ = Mode::kObject;
      (void)scanner_.feed(c);
      out.push_back(c);
      return Step::kMore;
    case Mode::kString: {
      const JsonStringDecoder::Step s = decoder_.feed(c, out);
      if (s == JsonStringDecoder::Step::kError) return Step::kError;
      if (s == JsonStringDecoder::Step::kDone) {
        mode_ = Mode::kDone;
        return Step::kDone;
      }
      return Step::kMore;
    }
    case Mode::kObject: {
      const bool in_string = scanner_.in_string();
      const JsonScanner::Step s = scanner_.feed(c);
      if (s == JsonScanner::Step::kError || s == JsonScanner::Step::kDoneBefore) {
        return Step::kError;
      }
      const auto u = static_cast<unsigned char>(c);
      if (in_string && u < 0x20) {
        switch (c) {
          case '\n': out += "\\n"; break;
          case '\r': out += "\\r"; break;
          case '\t': out += "\\t"; break;
          default: {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\u00";
            out.push_back(kHex[u >> 4]);
            out.push_back(kHex[u & 0xF]);
          }
        }
      } else {
        out.push_back(c);
      }
      if (s == JsonScanner::Step::kDone) {
        mode_ = Mode::kDone;
        return Step::kDone;
      }
      return Step::kMore;
    }
  }
  return Step::kError;
}

}  // namespace turbine::parsers
