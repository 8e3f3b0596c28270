#include "parsers/call_object.h"

namespace turbine::parsers {

bool CallObjectParser::ready() const {
  return have_name_ && (arguments_scanner_.started() || closed_);
}

std::string CallObjectParser::take_arguments() {
  std::string out;
  out.swap(arguments_);
  return out;
}

CallObjectParser::Step CallObjectParser::close() {
  if (!have_name_) return Step::kError;
  if (!arguments_scanner_.started()) {
    if (require_arguments_) return Step::kError;
    arguments_ = "{}";
  } else if (!have_arguments_) {
    return Step::kError;  // unreachable: kAfter follows a finished value
  }
  closed_ = true;
  state_ = State::kDone;
  return Step::kDone;
}

CallObjectParser::Step CallObjectParser::feed(char c) {
  switch (state_) {
    case State::kDone: return Step::kError;
    case State::kStart:
      if (is_json_space(c)) return Step::kMore;
      if (c != '{') return Step::kError;
      state_ = State::kFirstKey;
      return Step::kMore;
    case State::kFirstKey:
    case State::kKey:
      if (is_json_space(c)) return Step::kMore;
      if (c == '"') {
        key_.clear();
        key_decoder_ = {};
        state_ = State::kKeyString;
        return Step::kMore;
      }
      if (c == '}' && state_ == State::kFirstKey) return close();
      return Step::kError;
    case State::kKeyString: {
      const auto s = key_decoder_.feed(c, key_);
      if (s == JsonStringDecoder::Step::kError) return Step::kError;
      if (s == JsonStringDecoder::Step::kDone) state_ = State::kColon;
      return Step::kMore;
    }
    case State::kColon:
      if (is_json_space(c)) return Step::kMore;
      if (c != ':') return Step::kError;
      state_ = State::kValue;
      return Step::kMore;
    case State::kValue:
      if (is_json_space(c)) return Step::kMore;
      if (key_ == "name") {
        if (have_name_ || c != '"') return Step::kError;
        state_ = State::kName;
        return Step::kMore;
      }
      if (key_ == "arguments" || key_ == "parameters") {
        if (arguments_scanner_.started()) return Step::kError;  // given twice
        state_ = State::kArguments;
        return feed(c);
      }
      skip_ = {};
      state_ = State::kSkip;
      return feed(c);
    case State::kName: {
      const auto s = name_decoder_.feed(c, name_);
      if (s == JsonStringDecoder::Step::kError) return Step::kError;
      if (s == JsonStringDecoder::Step::kDone) {
        if (name_.empty()) return Step::kError;
        have_name_ = true;
        state_ = State::kAfter;
      }
      return Step::kMore;
    }
    case State::kArguments: {
      const auto s = arguments_scanner_.feed(c, arguments_);
      if (s == ArgumentsScanner::Step::kError) return Step::kError;
      if (s == ArgumentsScanner::Step::kDone) {
        have_arguments_ = true;
        state_ = State::kAfter;
      }
      return Step::kMore;
    }
    case State::kSkip:
      switch (skip_.feed(c)) {
        case JsonScanner::Step::kMore: return Step::kMore;
        case JsonScanner::Step::kDone: state_ = State::kAfter; return Step::kMore;
        case JsonScanner::Step::kDoneBefore: state_ = State::kAfter; return feed(c);
        case JsonScanner::Step::kError: return Step::kError;
      }
      return Step::kError;
    case State::kAfter:
      if (is_json_space(c)) return Step::kMore;
      if (c == ',') {
        state_ = State::kKey;
        return Step::kMore;
      }
      if (c == '}') return close();
      return Step::kError;
  }
  return Step::kError;
}

}  // namespace turbine::parsers
