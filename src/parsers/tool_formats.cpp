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

// ---------------------------------------------------------------------------------------------
// Hermes: <tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";

class HermesParser final : public ToolParserBase {
 public:
  using ToolParserBase::ToolParserBase;

 private:
  enum class State { kText, kCall, kAfterCall };

  void run(bool at_end) override {
    while (true) {
      switch (state_) {
        case State::kText: {
          if (!has_input()) return;
          const size_t lt = buf_.find('<', pos_);
          if (lt == std::string::npos) {
            text(buf_.size() - pos_);
            return;
          }
          text(lt - pos_);
          const Match open = match(kHermesOpen, at_end);
          if (open == Match::kYes) {
            begin_markup();
            markup(kHermesOpen.size());
            begin_object_call(/*require_arguments=*/false);
            state_ = State::kCall;
            break;
          }
          if (open == Match::kPartial) return;
          text(1);
          break;
        }
        case State::kCall:
          switch (drive_call(at_end)) {
            case CallStep::kMore: return;
            case CallStep::kDone: state_ = State::kAfterCall; break;
            case CallStep::kFailed: state_ = State::kText; break;
          }
          break;
        case State::kAfterCall: {
          // Whitespace, and the extra '}' models sometimes add, up to the closer.
          while (has_input() && (is_json_space(peek()) || peek() == '}')) markup(1);
          if (!has_input()) return;
          const Match close = match(kHermesClose, at_end);
          if (close == Match::kPartial) return;
          if (close == Match::kYes) markup(kHermesClose.size());
          state_ = State::kText;
          break;
        }
      }
    }
  }

  State state_ = State::kText;
};

// ---------------------------------------------------------------------------------------------
// Llama 3.x: {"name": ..., "parameters": ...} (whole answer), <|python_tag|>{...}, ';' between.

constexpr std::string_view kPythonTag = "<|python_tag|>";

class Llama3JsonParser final : public ToolParserBase {
 public:
  using ToolParserBase::ToolParserBase;

 private:
  enum class State { kStart, kText, kTagged, kSeparator, kCall, kBetween };

  void run(bool at_end) override {
    while (true) {
      switch (state_) {
        case State::kStart: {
          while (has_input() && is_json_space(peek())) text(1);
          if (!has_input()) return;
          const Match tag = match(kPythonTag, at_end);
          if (tag == Match::kPartial) return;
          if (tag == Match::kYes) {
            begin_markup();
            markup(kPythonTag.size());
            state_ = State::kTagged;
          } else if (peek() == '{') {
            begin_markup();
            begin_object_call(/*require_arguments=*/true);
            state_ = State::kCall;
          } else {
            state_ = State::kText;
          }
          break;
        }
        case State::kText: {
          if (!has_input()) return;
          const size_t lt = buf_.find('<', pos_);
          if (lt == std::string::npos) {
            text(buf_.size() - pos_);
            return;
          }
          text(lt - pos_);
          const Match tag = match(kPythonTag, at_end);
          if (tag == Match::kPartial) return;
          if (tag == Match::kYes) {
            begin_markup();
            markup(kPythonTag.size());
            state_ = State::kTagged;
          } else {
            text(1);
          }
          break;
        }
        case State::kTagged:
        case State::kSeparator: {
          while (has_input() && is_json_space(peek())) markup(1);
          if (!has_input()) {
            // A tag with nothing after it is content; a trailing ';' is dropped.
            if (at_end && state_ == State::kTagged) {
              degrade();
              state_ = State::kText;
            }
            return;
          }
          if (state_ == State::kSeparator) {
            const Match tag = match(kPythonTag, at_end);
            if (tag == Match::kPartial) return;
            if (tag == Match::kYes) {
              markup(kPythonTag.size());
              state_ = State::kTagged;
              break;
            }
          }
          if (peek() == '{') {
            // After the tag the model has committed to a call; untagged JSON needs arguments.
            begin_object_call(/*require_arguments=*/state_ == State::kSeparator);
            state_ = State::kCall;
          } else {
            degrade();
            state_ = State::kText;
          }
          break;
        }
        case State::kCall:
          switch (drive_call(at_end)) {
            case CallStep::kMore: return;
            case CallStep::kDone: state_ = State::kBetween; break;
            case CallStep::kFailed: state_ = State::kText; break;
          }
          break;
        case State::kBetween: {
          while (has_input() && is_json_space(peek())) text(1);
          if (!has_input()) return;
          if (peek() == ';') {
            begin_markup();
            markup(1);
            state_ = State::kSeparator;
            break;
          }
          const Match tag = match(kPythonTag, at_end);
          if (tag == Match::kPartial) return;
          if (tag == Match::kYes) {
            begin_markup();
            markup(kPythonTag.size());
            state_ = State::kTagged;
          } else if (peek() == '{') {
            begin_markup();
            begin_object_call(/*require_arguments=*/true);
            state_ = State::kCall;
          } else {
            state_ = State::kText;
          }
          break;
        }
      }
    }
  }

  State state_ = State::kStart;
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

class MistralParser final : public ToolParserBase {
 public:
  using ToolParserBase::ToolParserBase;

 private:
  enum class State { kText, kAfterTag, kName, kCallId, kArgs, kArray, kArrayCall, kArrayAfter };

  // Out of input inside markup: wait, or (at the end) the markup is content.
  void starved(bool at_end) {
    if (!at_end) return;
    degrade();
    state_ = State::kText;
  }

  void run(bool at_end) override {
    while (true) {
      switch (state_) {
        case State::kText: {
          if (!has_input()) return;
          const size_t lb = buf_.find('[', pos_);
          if (lb == std::string::npos) {
            text(buf_.size() - pos_);
            return;
          }
          text(lb - pos_);
          const Match tag = match(kToolCalls, at_end);
          if (tag == Match::kPartial) return;
          if (tag == Match::kYes) {
            begin_markup();
            markup(kToolCalls.size());
            state_ = State::kAfterTag;
          } else {
            text(1);
          }
          break;
        }
        case State::kAfterTag:
          while (has_input() && is_json_space(peek())) markup(1);
          if (!has_input()) return starved(at_end);
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
            const Match args = match(kArgsTag, at_end);
            const Match id = match(kCallIdTag, at_end);
            if (args == Match::kYes) {
              markup(kArgsTag.size());
              begin_named_call(name_);
              state_ = State::kArgs;
            } else if (id == Match::kYes) {
              markup(kCallIdTag.size());
              state_ = State::kCallId;
            } else if (args == Match::kPartial || id == Match::kPartial) {
              return;
            } else {
              degrade();
              state_ = State::kText;
            }
          } else if (peek() == '{' && !name_.empty()) {
            begin_named_call(name_);
            state_ = State::kArgs;
          } else {
            degrade();
            state_ = State::kText;
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
          const Match args = match(kArgsTag, at_end);
          if (args == Match::kPartial) return;
          if (args == Match::kYes) {
            markup(kArgsTag.size());
            begin_named_call(name_);
            state_ = State::kArgs;
          } else {
            degrade();
            state_ = State::kText;
          }
          break;
        }
        case State::kArgs:
          if (drive_call(at_end) == CallStep::kMore) return;
          state_ = State::kText;
          break;
        case State::kArray:
          while (has_input() && is_json_space(peek())) markup(1);
          if (!has_input()) return starved(at_end);
          if (peek() == '{') {
            begin_object_call(/*require_arguments=*/false);
            state_ = State::kArrayCall;
          } else if (peek() == ']' && tool_calls() > 0) {
            markup(1);
            state_ = State::kText;
          } else {
            degrade();
            state_ = State::kText;
          }
          break;
        case State::kArrayCall:
          switch (drive_call(at_end)) {
            case CallStep::kMore: return;
            case CallStep::kDone: state_ = State::kArrayAfter; break;
            case CallStep::kFailed: state_ = State::kText; break;
          }
          break;
        case State::kArrayAfter:
          while (has_input() && is_json_space(peek())) markup(1);
          if (!has_input()) return;
          if (peek() == ',') {
            markup(1);
            state_ = State::kArray;
          } else {
            if (peek() == ']') markup(1);
            state_ = State::kText;
          }
          break;
      }
    }
  }

  State state_ = State::kText;
  std::string name_;
};

// ---------------------------------------------------------------------------------------------
// DeepSeek V3 / R1 and V3.1.

constexpr std::string_view kCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kToolSep = "<｜tool▁sep｜>";

class DeepSeekParser final : public ToolParserBase {
 public:
  using ToolParserBase::ToolParserBase;

 private:
  enum class State { kText, kCalls, kHead, kName, kFence, kArgs, kTail };

  void starved(bool at_end) {
    if (!at_end) return;
    degrade();
    state_ = State::kText;
  }

  void run(bool at_end) override {
    while (true) {
      switch (state_) {
        case State::kText: {
          if (!has_input()) return;
          const size_t lt = buf_.find('<', pos_);
          if (lt == std::string::npos) {
            text(buf_.size() - pos_);
            return;
          }
          text(lt - pos_);
          // A block normally opens with calls_begin; a bare call_begin is accepted too.
          const Match block = match(kCallsBegin, at_end);
          const Match call = match(kCallBegin, at_end);
          if (block == Match::kYes) {
            begin_markup();
            markup(kCallsBegin.size());
            state_ = State::kCalls;
          } else if (call == Match::kYes) {
            begin_markup();
            markup(kCallBegin.size());
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
          while (has_input() && is_json_space(peek())) markup(1);
          if (!has_input()) return starved(at_end);
          const Match begin = match(kCallBegin, at_end);
          const Match end = match(kCallsEnd, at_end);
          if (begin == Match::kYes) {
            markup(kCallBegin.size());
            head_.clear();
            state_ = State::kHead;
          } else if (end == Match::kYes) {
            markup(kCallsEnd.size());
            state_ = State::kText;
          } else if (begin == Match::kPartial || end == Match::kPartial) {
            return;
          } else {
            degrade();
            state_ = State::kText;
          }
          break;
        }
        case State::kHead: {
          // V3/R1: "function" (the call type), the separator, then the name on its own line.
          // V3.1: the name, the separator, then the arguments.
          bool decided = false;
          while (has_input() && !decided) {
            if (peek() == '<') {
              const Match sep = match(kToolSep, at_end);
              if (sep == Match::kPartial) return;
              if (sep == Match::kYes) {
                markup(kToolSep.size());
                decided = true;
                break;
              }
            }
            head_.push_back(peek());
            markup(1);
            if (head_.size() > kMaxName) {
              degrade();
              state_ = State::kText;
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
            degrade();
            state_ = State::kText;
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
            degrade();
            state_ = State::kText;
            break;
          }
          if (peek() == '\n') markup(1);
          state_ = State::kFence;
          break;
        }
        case State::kFence: {
          while (has_input() && is_json_space(peek())) markup(1);
          if (!has_input()) return starved(at_end);
          const Match json_fence = match("```json", at_end);
          if (json_fence == Match::kPartial) return;
          if (json_fence == Match::kYes) {
            markup(7);
          } else if (match("```", at_end) == Match::kYes) {
            markup(3);
          } else if (peek() != '{') {
            degrade();
            state_ = State::kText;
            break;
          }
          begin_named_call(name_);
          state_ = State::kArgs;
          break;
        }
        case State::kArgs:
          switch (drive_call(at_end)) {
            case CallStep::kMore: return;
            case CallStep::kDone: state_ = State::kTail; break;
            case CallStep::kFailed: state_ = State::kText; break;
          }
          break;
        case State::kTail: {
          // The closing fence, then the call's end marker.
          while (has_input() && (is_json_space(peek()) || peek() == '`')) markup(1);
          if (!has_input()) return;
          const Match end = match(kCallEnd, at_end);
          const Match block_end = match(kCallsEnd, at_end);
          if (end == Match::kYes) {
            markup(kCallEnd.size());
            state_ = State::kCalls;
          } else if (block_end == Match::kYes) {
            markup(kCallsEnd.size());
            state_ = State::kText;
          } else if (end == Match::kPartial || block_end == Match::kPartial) {
            return;
          } else {
            state_ = State::kText;
          }
          break;
        }
      }
    }
  }

  State state_ = State::kText;
  std::string head_;
  std::string name_;
};

// ---------------------------------------------------------------------------------------------
// Generic JSON: a call object or an array of them at the start of the output.

class JsonParser final : public ToolParserBase {
 public:
  using ToolParserBase::ToolParserBase;

 private:
  enum class State {
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

  void starved(bool at_end) {
    if (!at_end) return;
    degrade();
    state_ = State::kText;
  }

  // '{' or '[' at pos_ opens the calls; anything else is not a call.
  void open_calls() {
    if (peek() == '{') {
      begin_object_call(/*require_arguments=*/true);
      state_ = State::kCall;
    } else if (peek() == '[') {
      markup(1);
      state_ = State::kArray;
    } else {
      degrade();
      state_ = State::kText;
    }
  }

  void run(bool at_end) override {
    while (true) {
      switch (state_) {
        case State::kStart: {
          while (has_input() && is_json_space(peek())) text(1);
          if (!has_input()) return;
          const Match fence = match("```", at_end);
          if (fence == Match::kPartial) return;
          if (fence == Match::kYes) {
            begin_markup();
            markup(3);
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
        case State::kFence: {
          // The language tag is looked for once: input that stops after it must not let a
          // second "json" pass as the tag when more arrives (unary and streamed agree).
          if (!fence_lang_seen_) {
            const Match lang = match("json", at_end);
            if (lang == Match::kPartial) return;
            if (lang == Match::kYes) markup(4);
            fence_lang_seen_ = true;
          }
          while (has_input() && is_json_space(peek())) markup(1);
          if (!has_input()) return starved(at_end);
          open_calls();
          break;
        }
        case State::kText: text(buf_.size() - pos_); return;
        case State::kCall:
          switch (drive_call(at_end)) {
            case CallStep::kMore: return;
            case CallStep::kDone: state_ = State::kBetween; break;
            case CallStep::kFailed: state_ = State::kText; break;
          }
          break;
        case State::kBetween: {
          while (has_input() && is_json_space(peek())) text(1);
          if (!has_input()) return;
          if (fenced_) {
            const Match fence = match("```", at_end);
            if (fence == Match::kPartial) return;
            if (fence == Match::kYes) {
              begin_markup();
              markup(3);
              fenced_ = false;
              break;
            }
          }
          if (peek() == ';' || peek() == ',') {
            begin_markup();
            markup(1);
            state_ = State::kSeparator;
          } else if (peek() == '{') {
            begin_markup();
            begin_object_call(/*require_arguments=*/true);
            state_ = State::kCall;
          } else {
            state_ = State::kText;
          }
          break;
        }
        case State::kSeparator:
          while (has_input() && is_json_space(peek())) markup(1);
          if (!has_input()) return;  // a trailing separator is dropped
          if (peek() == '{') {
            begin_object_call(/*require_arguments=*/true);
            state_ = State::kCall;
          } else {
            degrade();
            state_ = State::kText;
          }
          break;
        case State::kArray:
          while (has_input() && is_json_space(peek())) markup(1);
          if (!has_input()) return starved(at_end);
          if (peek() == '{') {
            begin_object_call(/*require_arguments=*/true);
            state_ = State::kArrayCall;
          } else if (peek() == ']' && tool_calls() > 0) {
            markup(1);
            state_ = State::kBetween;
          } else {
            degrade();
            state_ = State::kText;
          }
          break;
        case State::kArrayCall:
          switch (drive_call(at_end)) {
            case CallStep::kMore: return;
            case CallStep::kDone: state_ = State::kArrayAfter; break;
            case CallStep::kFailed: state_ = State::kText; break;
          }
          break;
        case State::kArrayAfter:
          while (has_input() && is_json_space(peek())) markup(1);
          if (!has_input()) return;
          if (peek() == ',') {
            markup(1);
            state_ = State::kArray;
          } else if (peek() == ']') {
            markup(1);
            state_ = State::kBetween;
          } else {
            state_ = State::kText;
          }
          break;
      }
    }
  }

  State state_ = State::kStart;
  bool fenced_ = false;
  bool fence_lang_seen_ = false;  // kFence: the optional "json" after ``` was looked for
};

// ---------------------------------------------------------------------------------------------
// A forced named function: the output is the arguments object.

class ForcedCallParser final : public ToolParserBase {
 public:
  ForcedCallParser(std::string name, ToolParserOptions options)
      : ToolParserBase(std::move(options)), name_(std::move(name)) {}

 private:
  enum class State { kStart, kArgs, kText };

  void run(bool at_end) override {
    while (true) {
      switch (state_) {
        case State::kStart:
          begin_markup();
          begin_named_call(name_);
          state_ = State::kArgs;
          break;
        case State::kArgs:
          if (drive_call(at_end) == CallStep::kMore) return;
          state_ = State::kText;
          break;
        case State::kText: text(buf_.size() - pos_); return;
      }
    }
  }

  State state_ = State::kStart;
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
