// The plug between generated text and protocol encoders: a StreamParser turns text pieces of one
// choice into ordered api::ChoiceDelta pieces (content, reasoning, tool-call deltas).
//
// Contract of every parser in this module:
// - feed() accepts text split anywhere (mid-tag, mid-UTF-8); finish() flushes what was held back.
// - Output is ordered: each piece carries exactly one kind (content, reasoning, or one tool call's
//   start/arguments); consecutive pieces of the same kind are merged.
// - Emitted strings never end inside a UTF-8 sequence (a split character is held until its last
//   byte arrives), so every piece can be written as JSON as it is.
// - Split invariance: the concatenation of everything emitted is the same however the text was
//   split, so assemble() of a stream equals the unary result of the whole text.
//
// Threads: a parser belongs to one choice and is used from one thread at a time (the request's
// strand); nothing is shared between parser instances.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/delta.h"

namespace turbine::parsers {

using Deltas = std::vector<api::ChoiceDelta>;

class StreamParser {
 public:
  virtual ~StreamParser() = default;
  // Appends what `text` (the next piece of output) makes final to `out`.
  virtual void feed(std::string_view text, Deltas& out) = 0;
  // End of output: appends everything held back. The parser must not be fed afterwards.
  virtual void finish(Deltas& out) = 0;
  // Tool calls started so far (a choice with calls ends with finish_reason "tool_calls").
  virtual int tool_calls() const { return 0; }
};

// The unary view of a choice: the sum of its deltas.
struct ParsedOutput {
  std::string content;
  std::string reasoning;
  std::vector<api::ToolCall> tool_calls;  // in index order
};

// Sums pieces: content and reasoning concatenated; calls by index (id and name from the piece
// that starts the call, arguments concatenated).
ParsedOutput assemble(const Deltas& deltas);

// feed(text) then finish(), assembled: what a unary response reports.
ParsedOutput parse_all(StreamParser& parser, std::string_view text);

// Writes ordered pieces and holds an incomplete trailing UTF-8 sequence of each kind until it
// completes (or until flush(), which writes it as is). Used by the parsers; exposed for tests.
class DeltaWriter {
 public:
  void content(std::string_view s, Deltas& out);
  void reasoning(std::string_view s, Deltas& out);
  // Starts call `index`: a piece with its id and name (and empty arguments).
  void call_begin(int index, std::string id, std::string name, Deltas& out);
  void call_arguments(int index, std::string_view s, Deltas& out);
  // Writes every held byte.
  void flush(Deltas& out);

 private:
  enum class Kind { kNone, kContent, kReasoning, kArguments };
  void write(Kind kind, int index, std::string_view s, Deltas& out);
  void put(Kind kind, int index, std::string_view s, Deltas& out);

  Kind carry_kind_ = Kind::kNone;
  int carry_index_ = 0;
  std::string carry_;  // bytes of an unfinished UTF-8 sequence (at most 3)
};

// Length of the longest prefix of `s` that does not end inside a UTF-8 sequence (a truncated
// multi-byte sequence at the end is excluded; invalid bytes count as complete).
size_t complete_utf8_prefix(std::string_view s);

}  // namespace turbine::parsers
