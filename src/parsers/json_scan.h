// Byte-at-a-time JSON building blocks for the tool-call parsers: they decide where a value ends
// and whether it is well formed without waiting for the whole text, so a call's arguments can be
// streamed as they arrive. Single-threaded values; no allocation beyond the nesting stack.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace turbine::parsers {

// Checks one JSON value (RFC 8259 syntax) fed a byte at a time. Leading whitespace is skipped.
// One leniency: raw control characters inside strings are accepted (models write literal
// newlines in code arguments); ArgumentsScanner escapes them on output.
class JsonScanner {
 public:
  enum class Step {
    kMore,        // byte consumed, value not finished
    kDone,        // byte consumed and it closed the value
    kDoneBefore,  // the value (a number) ended before this byte, which is not consumed
    kError,       // the byte cannot continue the value (not consumed)
  };
  static constexpr int kMaxDepth = 128;

  Step feed(char c);
  // At end of input: whether what was fed is a complete value (a top-level number needs this).
  bool complete_at_end() const;
  // True while the next byte would be inside a string literal.
  bool in_string() const;
  bool started() const { return started_; }

 private:
  enum class State : uint8_t {
    kValue,
    kObjectFirst,  // after '{': a key or '}'
    kObjectKey,    // after ',': a key
    kColon,
    kAfter,       // after a value inside a container: ',' or the closer
    kArrayFirst,  // after '[': a value or ']'
    kString,
    kEscape,
    kHex,
    kNumMinus,
    kNumZero,
    kNumInt,
    kNumDot,
    kNumFrac,
    kNumExp,
    kNumExpSign,
    kNumExpDigits,
    kLiteral,
    kDone,
  };
  Step value_done();
  Step begin_value(char c);

  State state_ = State::kValue;
  std::vector<char> stack_;  // '{' or '['
  bool key_ = false;         // the string being read is an object key
  bool started_ = false;
  int hex_left_ = 0;
  const char* literal_ = nullptr;  // "true", "false" or "null" while in kLiteral
  int literal_pos_ = 0;
};

// Decodes the contents of a JSON string after its opening quote, a byte at a time. \u escapes
// (with surrogate pairs) become UTF-8; a lone surrogate becomes U+FFFD.
class JsonStringDecoder {
 public:
  enum class Step { kMore, kDone, kError };
  Step feed(char c, std::string& out);

 private:
  enum class State : uint8_t { kChars, kEscape, kHex, kDone };
  State state_ = State::kChars;
  int hex_left_ = 0;
  uint32_t code_ = 0;
  uint32_t high_surrogate_ = 0;  // a \uD8xx waiting for its low half
};

// A call's arguments value, streamed: a JSON object is passed through as raw text (raw control
// characters inside its strings escaped so the text stays valid JSON); a JSON string (the
// OpenAI wire form some models copy) yields its decoded contents. Anything else is an error.
// Leading whitespace is skipped.
class ArgumentsScanner {
 public:
  enum class Step { kMore, kDone, kError };
  // Appends the argument text this byte produces to `out`. kError: byte not consumed.
  Step feed(char c, std::string& out);
  bool started() const { return mode_ != Mode::kWaiting; }

 private:
  enum class Mode : uint8_t { kWaiting, kObject, kString, kDone };
  Mode mode_ = Mode::kWaiting;
  JsonScanner scanner_;
  JsonStringDecoder decoder_;
};

inline bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

}  // namespace turbine::parsers
