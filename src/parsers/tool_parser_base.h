// Internal: the machinery every tool-call format shares. A format is a state machine over buf_
// (unconsumed input) that calls text()/markup() to consume bytes and begin_*_call()/drive_call()
// to parse a call; this class turns that into ordered deltas with the whitespace, degrade and
// announce rules documented in tool_parsers.h.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "parsers/call_object.h"
#include "parsers/tool_parsers.h"

namespace turbine::parsers {

enum class Match { kNo, kYes, kPartial };

// Whether buf[pos..] starts with `lit`. kPartial: buf ends inside a prefix of `lit` and more
// input may come (never when at_end).
Match match_at(std::string_view buf, size_t pos, std::string_view lit, bool at_end);

class ToolParserBase : public StreamParser {
 public:
  explicit ToolParserBase(ToolParserOptions options);
  void feed(std::string_view text, Deltas& out) final;
  void finish(Deltas& out) final;
  int tool_calls() const final { return calls_ + (announced_ ? 1 : 0); }

 protected:
  // Consumes buf_ from pos_ as far as the input decides. at_end: nothing more will come.
  virtual void run(bool at_end) = 0;

  bool has_input() const { return pos_ < buf_.size(); }
  char peek() const { return buf_[pos_]; }
  Match match(std::string_view lit, bool at_end) const { return match_at(buf_, pos_, lit, at_end); }
  // buf_[pos_, pos_ + n) is content.
  void text(size_t n);
  // Starts a run of markup at pos_: whitespace held before it is set aside (dropped if a call
  // follows, restored if the markup degrades).
  void begin_markup();
  // buf_[pos_, pos_ + n) is markup (kept for a degrade).
  void markup(size_t n);
  // JSON whitespace at pos_ is markup; whether input is left after it.
  bool skip_space_markup();
  // JSON whitespace at pos_ is content; whether input is left after it.
  bool skip_space_text();
  // Content up to the next `c`: true when pos_ is at one; false when the input ran out first.
  bool text_until(char c);
  // `lit` at pos_ is markup: consumed on kYes.
  Match take(std::string_view lit, bool at_end);
  // `lit` at pos_ starts a run of markup: on kYes, begin_markup() and consume it.
  Match open_markup(std::string_view lit, bool at_end);
  // Content up to the next `tag`, which then opens a run of markup (true). false: the input
  // ran out, or it ends in what may become the tag.
  bool open_tag(std::string_view tag, bool at_end);
  // A call object starts at pos_ (CallObjectParser).
  void begin_object_call(bool require_arguments);
  // A call named `name` whose arguments value starts at pos_.
  void begin_named_call(std::string name);
  bool in_call() const { return object_.has_value() || arguments_.has_value(); }

  enum class CallStep { kMore, kDone, kFailed };
  // Feeds buf_ to the current call. kDone: the call is complete (or was cut off by the end of
  // the output after it was announced). kFailed: the markup degraded to content, or an announced
  // call broke; parsing continues with text at pos_.
  CallStep drive_call(bool at_end);
  // The markup since begin_markup() is content after all.
  void degrade();

  std::string buf_;
  size_t pos_ = 0;

 private:
  void content(std::string_view s);
  void end_call();
  bool allowed(const std::string& name) const;

  ToolParserOptions options_;
  DeltaWriter writer_;
  Deltas* out_ = nullptr;
  std::string held_ws_;    // whitespace after the last content, not yet written
  std::string markup_ws_;  // held whitespace set aside by begin_markup()
  std::string raw_;        // markup consumed since begin_markup() (or the last announce)
  std::optional<CallObjectParser> object_;
  std::optional<ArgumentsScanner> arguments_;
  std::string name_;          // named calls
  std::string pending_args_;  // named calls: argument text not yet written
  bool announced_ = false;
  int calls_ = 0;  // finished calls
};

}  // namespace turbine::parsers
