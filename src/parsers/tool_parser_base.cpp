#include "parsers/tool_parser_base.h"

#include <algorithm>
#include <random>

namespace turbine::parsers {

Match match_at(std::string_view buf, size_t pos, std::string_view lit, bool at_end) {
  const std::string_view rest = buf.substr(std::min(pos, buf.size()));
  if (rest.size() >= lit.size()) return rest.starts_with(lit) ? Match::kYes : Match::kNo;
  if (at_end || !lit.starts_with(rest)) return Match::kNo;
  return Match::kPartial;
}

std::string make_call_id() {
  static constexpr char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id.push_back(kChars[rng() % (sizeof(kChars) - 1)]);
  return id;
}

ToolParserBase::ToolParserBase(ToolParserOptions options) : options_(std::move(options)) {
  if (!options_.make_id) options_.make_id = make_call_id;
}

void ToolParserBase::feed(std::string_view text, Deltas& out) {
  out_ = &out;
  buf_.append(text);
  run(/*at_end=*/false);
  buf_.erase(0, pos_);
  pos_ = 0;
  out_ = nullptr;
}

void ToolParserBase::finish(Deltas& out) {
  out_ = &out;
  run(/*at_end=*/true);
  if (in_call()) (void)drive_call(/*at_end=*/true);
  // Trailing whitespace is content only when no call was made.
  if (tool_calls() == 0) writer_.content(held_ws_, out);
  held_ws_.clear();
  writer_.flush(out);
  buf_.clear();
  pos_ = 0;
  out_ = nullptr;
}

void ToolParserBase::content(std::string_view s) {
  size_t last = s.size();
  while (last > 0 && is_json_space(s[last - 1])) --last;
  if (last == 0) {
    held_ws_.append(s);
    return;
  }
  if (!held_ws_.empty()) {
    writer_.content(held_ws_, *out_);
    held_ws_.clear();
  }
  writer_.content(s.substr(0, last), *out_);
  held_ws_.append(s.substr(last));
}

void ToolParserBase::text(size_t n) {
  content(std::string_view(buf_).substr(pos_, n));
  pos_ += n;
}

void ToolParserBase::begin_markup() {
  markup_ws_ = std::move(held_ws_);
  held_ws_.clear();
  raw_.clear();
}

void ToolParserBase::markup(size_t n) {
  raw_.append(buf_, pos_, n);
  pos_ += n;
}

bool ToolParserBase::skip_space_markup() {
  while (has_input() && is_json_space(peek())) markup(1);
  return has_input();
}

bool ToolParserBase::skip_space_text() {
  while (has_input() && is_json_space(peek())) text(1);
  return has_input();
}

bool ToolParserBase::text_until(char c) {
  if (!has_input()) return false;
  const size_t at = buf_.find(c, pos_);
  if (at == std::string::npos) {
    text(buf_.size() - pos_);
    return false;
  }
  text(at - pos_);
  return true;
}

Match ToolParserBase::take(std::string_view lit, bool at_end) {
  const Match m = match(lit, at_end);
  if (m == Match::kYes) markup(lit.size());
  return m;
}

Match ToolParserBase::open_markup(std::string_view lit, bool at_end) {
  const Match m = match(lit, at_end);
  if (m == Match::kYes) {
    begin_markup();
    markup(lit.size());
  }
  return m;
}

bool ToolParserBase::open_tag(std::string_view tag, bool at_end) {
  while (text_until(tag.front())) {
    const Match m = open_markup(tag, at_end);
    if (m != Match::kNo) return m == Match::kYes;
    text(1);
  }
  return false;
}

void ToolParserBase::degrade() {
  held_ws_ = std::move(markup_ws_) + held_ws_;
  markup_ws_.clear();
  std::string raw = std::move(raw_);
  raw_.clear();
  object_.reset();
  arguments_.reset();
  pending_args_.clear();
  content(raw);
}

void ToolParserBase::begin_object_call(bool require_arguments) {
  object_.emplace(require_arguments);
  arguments_.reset();
}

void ToolParserBase::begin_named_call(std::string name) {
  object_.reset();
  arguments_.emplace();
  name_ = std::move(name);
  pending_args_.clear();
}

bool ToolParserBase::allowed(const std::string& name) const {
  if (name.empty()) return false;
  if (options_.tool_names.empty()) return true;
  return std::find(options_.tool_names.begin(), options_.tool_names.end(), name) !=
         options_.tool_names.end();
}

void ToolParserBase::end_call() {
  if (announced_) {
    announced_ = false;
    ++calls_;
  }
  object_.reset();
  arguments_.reset();
  pending_args_.clear();
  raw_.clear();
}

ToolParserBase::CallStep ToolParserBase::drive_call(bool at_end) {
  while (has_input()) {
    const char c = peek();
    bool done = false;
    if (object_) {
      const CallObjectParser::Step s = object_->feed(c);
      if (s == CallObjectParser::Step::kError) break;
      done = s == CallObjectParser::Step::kDone;
    } else {
      const ArgumentsScanner::Step s = arguments_->feed(c, pending_args_);
      if (s == ArgumentsScanner::Step::kError) break;
      done = s == ArgumentsScanner::Step::kDone;
    }
    raw_.push_back(c);
    ++pos_;
    if (!announced_) {
      const bool ready = object_ ? object_->ready() : arguments_->started();
      if (ready) {
        std::string name = object_ ? object_->name() : name_;
        if (!allowed(name)) {
          degrade();
          return CallStep::kFailed;
        }
        markup_ws_.clear();
        raw_.clear();
        announced_ = true;
        writer_.call_begin(calls_, options_.make_id(), std::move(name), *out_);
      }
    }
    if (announced_) {
      const std::string args = object_ ? object_->take_arguments() : std::move(pending_args_);
      pending_args_.clear();
      writer_.call_arguments(calls_, args, *out_);
    }
    if (done) {
      end_call();
      return CallStep::kDone;
    }
  }
  if (has_input()) {  // the byte at pos_ cannot continue the call
    if (announced_) {
      end_call();
    } else {
      degrade();
    }
    return CallStep::kFailed;
  }
  if (!at_end) return CallStep::kMore;
  if (announced_) {  // cut off inside the arguments: the call keeps what it has
    end_call();
    return CallStep::kDone;
  }
  degrade();
  return CallStep::kFailed;
}

}  // namespace turbine::parsers
