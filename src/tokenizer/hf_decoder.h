// tokenizer.json "decoder": ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip and Sequence,
// compiled into a per-token transformation plus one start-of-text rule, so that streamed text
// (token by token) and whole-sequence text agree:
//   * each token's text is its piece run through the per-token steps (ByteLevel maps characters
//     back to bytes, Replace, ByteFallback turns "<0xXX>" into its byte, Metaspace turns the
//     replacement into ' ', Strip before any Fuse strips each token);
//   * Strip after Fuse (llama2's {"Strip", " ", start: 1}) and Metaspace's first-token rule remove
//     leading spaces of the first token of the text only. Strip's `stop` after Fuse (trailing
//     characters of the whole text) cannot be streamed and is ignored.
//
// Immutable after parse(); safe from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "tokenizer/unicode_regex.h"

namespace turbine::tokenizer {

class HfDecoder {
 public:
  // `config` is the tokenizer.json "decoder" value (null: pieces are their own text).
  static Result<HfDecoder> parse(const nlohmann::json& config);

  // Bytes of one token. `added`: an added token, which ByteLevel leaves as it is (tokenizers.js
  // and the Rust crate both pass added tokens' content through).
  std::string token_text(std::string_view piece, bool added) const;

  // How many leading `strip_char()` characters the first token of a text loses.
  size_t strip_at_start() const { return strip_at_start_; }
  char strip_char() const { return strip_char_; }
  bool byte_level() const { return byte_level_; }

 private:
  enum class Kind { kByteLevel, kReplace, kByteFallback, kStrip, kMetaspace };
  struct Step {
    Kind kind;
    std::shared_ptr<UnicodeRegex> regex;  // Replace
    std::string content;                  // Replace: the replacement; Strip: the character
    std::string replacement;              // Metaspace
    size_t start = 0;                     // Strip
    size_t stop = 0;
  };
  Status add(const nlohmann::json& config, bool& fused);

  std::vector<Step> steps_;
  size_t strip_at_start_ = 0;
  char strip_char_ = ' ';
  bool byte_level_ = false;
};

}  // namespace turbine::tokenizer
