#include "parsers/reasoning_parser.h"

#include <string>

#include "parsers/json_scan.h"
#include "parsers/tool_parser_base.h"

namespace turbine::parsers {
namespace {

struct Tags {
  std::string_view open;
  std::string_view close;
};

Tags tags_for(ReasoningFormat format) {
  if (format == ReasoningFormat::kBracketThink) return {"[THINK]", "[/THINK]"};
  return {"<think>", "</think>"};
}

class ThinkParser final : public StreamParser {
 public:
  ThinkParser(Tags tags, bool prompt_in_reasoning)
      : tags_(tags), prompt_in_reasoning_(prompt_in_reasoning) {}

  void feed(std::string_view text, Deltas& out) override {
    buf_.append(text);
    run(/*at_end=*/false, out);
    buf_.erase(0, pos_);
    pos_ = 0;
  }

  void finish(Deltas& out) override {
    run(/*at_end=*/true, out);
    if (state_ == State::kStart && !prompt_in_reasoning_) writer_.content(lead_ws_, out);
    writer_.flush(out);
    buf_.clear();
    pos_ = 0;
  }

 private:
  enum class State { kStart, kReasoning, kAfterClose, kContent };

  // Reasoning text without its leading newlines; trailing newlines are held until more
  // reasoning follows (dropped at the closing tag or the end).
  void reasoning(std::string_view s, Deltas& out) {
    if (!reasoning_started_) {
      while (!s.empty() && (s.front() == '\n' || s.front() == '\r')) s.remove_prefix(1);
      if (s.empty()) return;
      reasoning_started_ = true;
    }
    size_t last = s.size();
    while (last > 0 && (s[last - 1] == '\n' || s[last - 1] == '\r')) --last;
    if (last == 0) {
      held_newlines_.append(s);
      return;
    }
    if (!held_newlines_.empty()) {
      writer_.reasoning(held_newlines_, out);
      held_newlines_.clear();
    }
    writer_.reasoning(s.substr(0, last), out);
    held_newlines_.append(s.substr(last));
  }

  void run(bool at_end, Deltas& out) {
    while (true) {
      switch (state_) {
        case State::kStart: {
          while (pos_ < buf_.size() && is_json_space(buf_[pos_])) lead_ws_.push_back(buf_[pos_++]);
          if (pos_ == buf_.size()) return;
          const Match open = match_at(buf_, pos_, tags_.open, at_end);
          if (open == Match::kPartial) return;
          if (open == Match::kYes) {
            pos_ += tags_.open.size();
            state_ = State::kReasoning;
          } else if (prompt_in_reasoning_) {
            state_ = State::kReasoning;
          } else {
            writer_.content(lead_ws_, out);
            state_ = State::kContent;
          }
          lead_ws_.clear();
          break;
        }
        case State::kReasoning: {
          if (pos_ == buf_.size()) return;
          const size_t cand = buf_.find(tags_.close.front(), pos_);
          if (cand == std::string::npos) {
            reasoning(std::string_view(buf_).substr(pos_), out);
            pos_ = buf_.size();
            return;
          }
          reasoning(std::string_view(buf_).substr(pos_, cand - pos_), out);
          pos_ = cand;
          const Match close = match_at(buf_, pos_, tags_.close, at_end);
          if (close == Match::kPartial) return;
          if (close == Match::kYes) {
            pos_ += tags_.close.size();
            held_newlines_.clear();
            state_ = State::kAfterClose;
          } else {
            reasoning(std::string_view(buf_).substr(pos_, 1), out);
            ++pos_;
          }
          break;
        }
        case State::kAfterClose:
          while (pos_ < buf_.size() && is_json_space(buf_[pos_])) ++pos_;
          if (pos_ == buf_.size()) return;
          state_ = State::kContent;
          break;
        case State::kContent:
          writer_.content(std::string_view(buf_).substr(pos_), out);
          pos_ = buf_.size();
          return;
      }
    }
  }

  Tags tags_;
  bool prompt_in_reasoning_;
  State state_ = State::kStart;
  std::string buf_;
  size_t pos_ = 0;
  std::string lead_ws_;
  std::string held_newlines_;
  bool reasoning_started_ = false;
  DeltaWriter writer_;
};

}  // namespace

std::unique_ptr<StreamParser> make_reasoning_parser(ReasoningFormat format,
                                                    bool prompt_in_reasoning) {
  if (format == ReasoningFormat::kNone) return nullptr;
  return std::make_unique<ThinkParser>(tags_for(format), prompt_in_reasoning);
}

bool prompt_in_reasoning(std::string_view prompt, ReasoningFormat format) {
  if (format == ReasoningFormat::kNone) return false;
  const Tags tags = tags_for(format);
  const size_t open = prompt.rfind(tags.open);
  if (open == std::string_view::npos) return false;
  const size_t close = prompt.rfind(tags.close);
  return close == std::string_view::npos || close < open;
}

}  // namespace turbine::parsers
