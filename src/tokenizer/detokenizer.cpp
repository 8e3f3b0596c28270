#include "tokenizer/detokenizer.h"

#include <algorithm>
#include <utility>

#include "tokenizer/utf8.h"

namespace turbine::tokenizer {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, int32_t prev_token,
                                               std::vector<std::string> stop_strings,
                                               bool skip_special, std::vector<int32_t> keep_special)
    : tokenizer_(tokenizer),
      prev_token_(prev_token),
      skip_special_(skip_special),
      keep_special_(std::move(keep_special)) {
  for (std::string& stop : stop_strings) {
    if (stop.empty()) continue;
    // Held text is always well-formed, so a stop must be too to ever match byte for byte.
    stops_.push_back(sanitize_utf8(stop));
  }
}

IncrementalDetokenizer::Delta IncrementalDetokenizer::push(int32_t token) {
  if (stopped_ || flushed_) return {{}, stopped_};
  const bool skip =
      skip_special_ && !std::binary_search(keep_special_.begin(), keep_special_.end(), token);
  pending_bytes_ += tokenizer_.token_text(prev_token_, token, skip);
  if (!(skip && tokenizer_.is_special(token) && tokenizer_.skipped_specials_are_invisible())) {
    prev_token_ = token;
  }
  const size_t tail = append_sanitized_utf8(pending_bytes_, held_);
  pending_bytes_.erase(0, pending_bytes_.size() - tail);
  return release(/*at_end=*/false);
}

std::string IncrementalDetokenizer::flush() {
  if (stopped_ || flushed_) return {};
  append_sanitized_utf8(pending_bytes_, held_, /*final_chunk=*/true);
  pending_bytes_.clear();
  flushed_ = true;
  return release(/*at_end=*/true).text;
}

IncrementalDetokenizer::Delta IncrementalDetokenizer::release(bool at_end) {
  Delta delta;
  // held_ had no whole stop string before this token and is shorter than the longest stop, so
  // searching all of it costs O(new bytes + stop length) per stop.
  size_t stop_at = std::string::npos;
  const std::string* matched = nullptr;
  for (const std::string& stop : stops_) {
    const size_t at = held_.find(stop);
    if (at < stop_at) {
      stop_at = at;
      matched = &stop;
    }
  }
  if (stop_at != std::string::npos) {
    matched_stop_ = *matched;
    delta.text = held_.substr(0, stop_at);
    delta.stopped = true;
    stopped_ = true;
    held_.clear();
    pending_bytes_.clear();
  } else {
    // Keep the longest suffix that is a proper prefix of some stop string. Such a suffix starts
    // where a (well-formed) stop string starts, so the split is on a character boundary.
    size_t keep = 0;
    if (!at_end) {
      for (const std::string& stop : stops_) {
        for (size_t k = std::min(stop.size() - 1, held_.size()); k > keep; --k) {
          if (held_.compare(held_.size() - k, k, stop, 0, k) == 0) {
            keep = k;
            break;
          }
        }
      }
    }
    delta.text = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
  }
  text_ += delta.text;
  return delta;
}

}  // namespace turbine::tokenizer
