// The per-family tool-call formats (documented in tool_parsers.h). Each is a small state machine
// over ToolParserBase; a state that needs more input than buf_ holds returns and resumes on the
// next feed, so the decisions (and with them the assembled output) do not depend on where the
// text was split.
#include <string>
#include <string_view>

#include "parsers/tool_parser_base.h"

namespace turbine::parsers {
namespace {

constexpr size_t kMaxName = 256;

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_json_space(s[b])) ++b;
  while (e > b && is_json_space(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

// A format's state machine: ToolParserBase plus the state, and the steps the formats share.
// State has kText (plain content); formats that accept a JSON array of calls also have kArray,
// kArrayCall and kArrayAfter. Parsing begins in kStart.
template <class StateT, StateT kStart = StateT::kText>
class FormatParser : public ToolParserBase {
 public:
  explicit FormatParser(ToolParserOptions options) : ToolParserBase(std::move(options)) {}

 protected:
  using State = StateT;

  // The markup since begin_markup() is content after all; scanning goes on with text.
  void fail() {
    degrade();
    state_ = State::kText;
  }

  // An untagged call object at pos_ opens a run of markup (it needs arguments to be a call);
  // `call` drives it.
  void open_json_call(State call) {
    begin_markup();
    begin_object_call(/*require_arguments=*/true);
    state_ = call;
  }

  // Out of input inside markup: wait, or (at the end) the markup is content.
  void starved(bool at_end) {
    if (at_end) fail();
  }

  // Feeds the current call; then `done` follows, or text if it failed. false: more input needed.
  bool step_call(bool at_end, State done) {
    switch (drive_call(at_end)) {
      case CallStep::kMore: return false;
      case CallStep::kDone: state_ = done; break;
      case CallStep::kFailed: state_ = State::kText; break;
    }
    return true;
  }

  // [{call}, {call}, ...] after its '[' (the array states); `closed` follows the ']'. false:
  // more input is needed.
  bool step_array(bool at_end, bool require_arguments, State closed) {
    switch (state_) {
      case State::kArray:
        if (!skip_space_markup()) {
          starved(at_end);
          return false;
        }
        if (peek() == '{') {
          begin_object_call(require_arguments);
          state_ = State::kArrayCall;
        } else if (peek() == ']' && tool_calls() > 0) {
          markup(1);
          state_ = closed;
        } else {
          fail();
        }
        return true;
      case State::kArrayCall: return step_call(at_end, State::kArrayAfter);
      case State::kArrayAfter:
        if (!skip_space_markup()) return false;
        if (peek() == ',') {
          markup(1);
          state_ = State::kArray;
        } else if (peek() == ']') {
          markup(1);
          state_ = closed;
        } else {
          state_ = State::kText;
        }
        return true;
      default: return true;
    }
  }

  State state_ = kStart;
};

// ---------------------------------------------------------------------------------------------
// Hermes: <tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";

enum class HermesState { kText, kCall, kAfterCall };

class HermesParser final : public FormatParser<HermesState> {
 public:
  using FormatParser::FormatParser;

 private:
  void run(bool at_end) override {
    while (true) {
      switch (state_) {
        case State::kText:
          if (!open_tag(kHermesOpen, at_end)) return;
          begin_object_call(/*require_arguments=*/false);
          state_ = State::kCall;
          break;
        case State::kCall:
          if (!step_call(at_end, State::kAfterCall)) return;
          break;
        case State::kAfterCall:
          // Whitespace, and the extra '}' models sometimes add, up to the closer.
          while (has_input() && (is_json_space(peek()) || peek() == '}')) markup(1);
          if (!has_input()) return;
          if (take(kHermesClose, at_end) == Match::kPartial) return;
          state_ = State::kText;
          break;
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Llama 3.x: {"name": ..., "parameters": ...} (whole answer), <|python_tag|>{...}, ';' between.

constexpr std::string_view kPythonTag = "<|python_tag|>";

enum class Llama3State { kStart, kText, kTagged, kSeparator, kCall, kBetween };

class Llama3JsonParser final : public FormatParser<Llama3State, Llama3State::kStart> {
 public:
  using FormatParser::FormatParser;

 private:
  // At the start or after a call: the tag or a call object opens markup (untagged JSON needs
  // arguments to be a call); anything else is text. false: more input is needed.
  bool open_call(bool at_end) {
    const Match tag = open_markup(kPythonTag, at_end);
    if (tag == Match::kPartial) return false;
    if (tag == Match::kYes) {
      state_ = State::kTagged;
    } else if (peek() == '{') {
      open_json_call(State::kCall);
    } else {
      state_ = State::kText;
    }
    return true;
  }

  void run(bool at_end) override {
    while (true) {
      switch (state_) {
        case State::kStart:
          if (!skip_space_text() || !open_call(at_end)) return;
          break;
        case State::kText:
          if (!open_tag(kPythonTag, at_end)) return;
          state_ = State::kTagged;
          break;
        case State::kTagged:
        case State::kSeparator: {
          if (!skip_space_markup()) {
            // A tag with nothing after it is content; a trailing ';' is dropped.
            if (at_end && state_ == State::kTagged) fail();
            return;
          }
          if (state_ == State::kSeparator) {
            const Match tag = take(kPythonTag, at_end);
            if (tag == Match::kPartial) return;
            if (tag == Match::kYes) {
              state_ = State::kTagged;
              break;
            }
          }
          if (peek() == '{') {
            // After the tag the model has committed to a call; untagged JSON needs arguments.
            begin_object_call(/*require_arguments=*/state_ == State::kSeparator);
            state_ = State::kCall;
          } else {
            fail();
          }
          break;
        }
        case State::kCall:
          if (!step_call(at_end, State::kBetween)) return;
          break;
        case State::kBetween:
          if (!skip_space_text()) return;
          if (peek() == ';') {
            begin_markup();
            markup(1);
            state_ = State::kSeparator;
          } else if (!open_call(at_end)) {
            return;
          }
          break;
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Mistral: [TOOL_CALLS][{...}, ...] and [TOOL_CALLS]name[ARGS]{...} ([CALL_ID]id optional).

constexpr std::string_view kToolCalls = "[TOOL_CALLS]";
constexpr std::string_view kArgsTag = "[ARGS]";
constexpr std::string_view kCallIdTag = "[CALL_ID]";

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

enum class MistralState {
  kText,
  kAfterTag,
  kName,
  kCallId,
  kArgs,
  kArray,
  kArrayCall,
  kArrayAfter
};

class MistralParser final : public FormatParser<MistralState> {
 public:
  using FormatParser::FormatParser;

 private:
  void run(bool at_end) override {
    while (true) {
      switch (state_) {
        case State::kText:
          if (!open_tag(kToolCalls, at_end)) return;
          state_ = State::kAfterTag;
          break;
        case State::kAfterTag:
          if (!skip_space_markup()) return starved(at_end);
          if (peek() == '[') {
            markup(1);
            state_ = State::kArray;
          } else {
            name_.clear();
            state_ = State::kName;
          }
          break;
        case State::kName: {
          while (has_input() && is_name_char(peek()) && name_.size() < kMaxName) {
            name_.push_back(peek());
            markup(1);
          }
          if (!has_input()) return starved(at_end);
          if (peek() == '[' && !name_.empty()) {
            // The two tags differ in their second byte: at most one can match or be partial.
            const Match args = take(kArgsTag, at_end);
            const Match id = args == Match::kYes ? Match::kNo : take(kCallIdTag, at_end);
            if (args == Match::kYes) {
              begin_named_call(name_);
              state_ = State::kArgs;
            } else if (id == Match::kYes) {
              state_ = State::kCallId;
            } else if (args == Match::kPartial || id == Match::kPartial) {
              return;
            } else {
              fail();
            }
          } else if (peek() == '{' && !name_.empty()) {
            begin_named_call(name_);
            state_ = State::kArgs;
          } else {
            fail();
          }
          break;
        }
        case State::kCallId: {
          // The model's own id (9 alphanumerics) is skipped: ids are ours.
          size_t n = 0;
          while (has_input() && is_name_char(peek()) && n < 64) {
            markup(1);
            ++n;
          }
          if (!has_input()) return starved(at_end);
          const Match args = take(kArgsTag, at_end);
          if (args == Match::kPartial) return;
          if (args == Match::kYes) {
            begin_named_call(name_);
            state_ = State::kArgs;
          } else {
            fail();
          }
          break;
        }
        case State::kArgs:
          if (!step_call(at_end, State::kText)) return;
          break;
        case State::kArray:
        case State::kArrayCall:
        case State::kArrayAfter:
          if (!step_array(at_end, /*require_arguments=*/false, State::kText)) return;
          break;
      }
    }
  }

  std::string name_;
};

// ---------------------------------------------------------------------------------------------
// DeepSeek V3 / R1 and V3.1.

constexpr std::string_view kCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kToolSep = "<｜tool▁sep｜>";

enum class DeepSeekState { kText, kCalls, kHead, kName, kFence, kArgs, kTail };

// The markers pair up as "call" and "calls" forms that differ where the 's' stands, so of two
// tried one after the other at most one matches or is partial.
class DeepSeekParser final : public FormatParser<DeepSeekState> {
 public:
  using FormatParser::FormatParser;

 private:
  void run(bool at_end) override {
    while (true) {
      switch (state_) {
        case State::kText: {
          if (!text_until('<')) return;
          // A block normally opens with calls_begin; a bare call_begin is accepted too.
          const Match block = open_markup(kCallsBegin, at_end);
          const Match call = block == Match::kYes ? Match::kNo : open_markup(kCallBegin, at_end);
          if (block == Match::kYes) {
            state_ = State::kCalls;
          } else if (call == Match::kYes) {
            head_.clear();
            state_ = State::kHead;
          } else if (block == Match::kPartial || call == Match::kPartial) {
            return;
          } else {
            text(1);
          }
          break;
        }
        case State::kCalls: {
          if (!skip_space_markup()) return starved(at_end);
          const Match begin = take(kCallBegin, at_end);
          const Match end = begin == Match::kYes ? Match::kNo : take(kCallsEnd, at_end);
          if (begin == Match::kYes) {
            head_.clear();
            state_ = State::kHead;
          } else if (end == Match::kYes) {
            state_ = State::kText;
          } else if (begin == Match::kPartial || end == Match::kPartial) {
            return;
          } else {
            fail();
          }
          break;
        }
        case State::kHead: {
          // V3/R1: "function" (the call type), the separator, then the name on its own line.
          // V3.1: the name, the separator, then the arguments.
          bool decided = false;
          while (has_input() && !decided) {
            if (peek() == '<') {
              const Match sep = take(kToolSep, at_end);
              if (sep == Match::kPartial) return;
              if (sep == Match::kYes) {
                decided = true;
                break;
              }
            }
            head_.push_back(peek());
            markup(1);
            if (head_.size() > kMaxName) {
              fail();
              break;
            }
          }
          if (state_ != State::kHead) break;
          if (!decided) return starved(at_end);
          const std::string head = trim(head_);
          if (head == "function") {
            name_.clear();
            state_ = State::kName;
          } else if (head.empty()) {
            fail();
          } else {
            begin_named_call(head);
            state_ = State::kArgs;
          }
          break;
        }
        case State::kName: {
          while (has_input() && peek() != '\n' && peek() != '`' && peek() != '{' &&
                 name_.size() <= kMaxName) {
            name_.push_back(peek());
            markup(1);
          }
          if (!has_input()) return starved(at_end);
          name_ = trim(name_);
          if (name_.empty() || name_.size() > kMaxName) {
            fail();
            break;
          }
          if (peek() == '\n') markup(1);
          state_ = State::kFence;
          break;
        }
        case State::kFence: {
          if (!skip_space_markup()) return starved(at_end);
          const Match json_fence = take("```json", at_end);
          if (json_fence == Match::kPartial) return;
          if (json_fence != Match::kYes && take("```", at_end) != Match::kYes && peek() != '{') {
            fail();
            break;
          }
          begin_named_call(name_);
          state_ = State::kArgs;
          break;
        }
        case State::kArgs:
          if (!step_call(at_end, State::kTail)) return;
          break;
        case State::kTail: {
          // The closing fence, then the call's end marker.
          while (has_input() && (is_json_space(peek()) || peek() == '`')) markup(1);
          if (!has_input()) return;
          const Match end = take(kCallEnd, at_end);
          const Match block_end = end == Match::kYes ? Match::kNo : take(kCallsEnd, at_end);
          if (end == Match::kYes) {
            state_ = State::kCalls;
          } else if (block_end != Match::kYes &&
                     (end == Match::kPartial || block_end == Match::kPartial)) {
            return;
          } else {
            state_ = State::kText;
          }
          break;
        }
      }
    }
  }

  std::string head_;
  std::string name_;
};

// ---------------------------------------------------------------------------------------------
// Generic JSON: a call object or an array of them at the start of the output.

constexpr std::string_view kFence = "```";

enum class JsonState {
  kStart,
  kFence,
  kText,
  kCall,
  kBetween,
  kSeparator,
  kArray,
  kArrayCall,
  kArrayAfter,
};

class JsonParser final : public FormatParser<JsonState, JsonState::kStart> {
 public:
  using FormatParser::FormatParser;

 private:
  // '{' or '[' at pos_ opens the calls; anything else is not a call.
  void open_calls() {
    if (peek() == '{') {
      begin_object_call(/*require_arguments=*/true);
      state_ = State::kCall;
    } else if (peek() == '[') {
      markup(1);
      state_ = State::kArray;
    } else {
      fail();
    }
  }

  void run(bool at_end) override {
    while (true) {
      switch (state_) {
        case State::kStart: {
          if (!skip_space_text()) return;
          const Match fence = open_markup(kFence, at_end);
          if (fence == Match::kPartial) return;
          if (fence == Match::kYes) {
            fenced_ = true;
            fence_lang_seen_ = false;
            state_ = State::kFence;
          } else if (peek() == '{' || peek() == '[') {
            begin_markup();
            open_calls();
          } else {
            state_ = State::kText;
          }
          break;
        }
        case State::kFence:
          // The language tag is looked for once: input that stops after it must not let a
          // second "json" pass as the tag when more arrives (unary and streamed agree).
          if (!fence_lang_seen_) {
            if (take("json", at_end) == Match::kPartial) return;
            fence_lang_seen_ = true;
          }
          if (!skip_space_markup()) return starved(at_end);
          open_calls();
          break;
        case State::kText: text(buf_.size() - pos_); return;
        case State::kCall:
          if (!step_call(at_end, State::kBetween)) return;
          break;
        case State::kBetween: {
          if (!skip_space_text()) return;
          if (fenced_) {
            const Match fence = open_markup(kFence, at_end);
            if (fence == Match::kPartial) return;
            if (fence == Match::kYes) {
              fenced_ = false;
              break;
            }
          }
          if (peek() == ';' || peek() == ',') {
            begin_markup();
            markup(1);
            state_ = State::kSeparator;
          } else if (peek() == '{') {
            open_json_call(State::kCall);
          } else {
            state_ = State::kText;
          }
          break;
        }
        case State::kSeparator:
          if (!skip_space_markup()) return;  // a trailing separator is dropped
          if (peek() == '{') {
            begin_object_call(/*require_arguments=*/true);
            state_ = State::kCall;
          } else {
            fail();
          }
          break;
        case State::kArray:
        case State::kArrayCall:
        case State::kArrayAfter:
          if (!step_array(at_end, /*require_arguments=*/true, State::kBetween)) return;
          break;
      }
    }
  }

  bool fenced_ = false;
  bool fence_lang_seen_ = false;  // kFence: the optional "json" after ``` was looked for
};

// ---------------------------------------------------------------------------------------------
// A forced named function: the output is the arguments object.

enum class ForcedState { kStart, kArgs, kText };

class ForcedCallParser final : public FormatParser<ForcedState, ForcedState::kStart> {
 public:
  ForcedCallParser(std::string name, ToolParserOptions options)
      : FormatParser(std::move(options)), name_(std::move(name)) {}

 private:
  void run(bool at_end) override {
    while (true) {
      switch (state_) {
        case State::kStart:
          begin_markup();
          begin_named_call(name_);
          state_ = State::kArgs;
          break;
        case State::kArgs:
          if (!step_call(at_end, State::kText)) return;
          break;
        case State::kText: text(buf_.size() - pos_); return;
      }
    }
  }

  std::string name_;
};

}  // namespace

std::unique_ptr<StreamParser> make_tool_call_parser(ToolCallFormat format,
                                                    ToolParserOptions options) {
  switch (format) {
    case ToolCallFormat::kNone: return nullptr;
    case ToolCallFormat::kHermes: return std::make_unique<HermesParser>(std::move(options));
    case ToolCallFormat::kLlama3Json: return std::make_unique<Llama3JsonParser>(std::move(options));
    case ToolCallFormat::kMistral: return std::make_unique<MistralParser>(std::move(options));
    case ToolCallFormat::kDeepSeek: return std::make_unique<DeepSeekParser>(std::move(options));
    case ToolCallFormat::kJson: return std::make_unique<JsonParser>(std::move(options));
  }
  return nullptr;
}

std::unique_ptr<StreamParser> make_forced_call_parser(std::string name, ToolParserOptions options) {
  return std::make_unique<ForcedCallParser>(std::move(name), std::move(options));
}

}  // namespace turbine::parsers
