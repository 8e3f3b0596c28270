// tokenizer.json "pre_tokenizer": Split, ByteLevel, Metaspace, Digits, Whitespace,
// WhitespaceSplit and Sequence (flattened into one list of steps).
//
// Immutable after parse(); pre_tokenize() is const and safe from any thread.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "tokenizer/unicode_regex.h"

namespace turbine::tokenizer {

// The words the BPE model encodes one by one. Pieces point into the caller's text or into
// `storage` (a deque, so earlier pieces stay valid while more are added).
struct PreTokens {
  std::vector<std::string_view> pieces;
  std::deque<std::string> storage;
  // Set by a final ByteLevel step: pieces are still raw bytes and are to be read through the
  // byte-level alphabet (the BPE model maps bytes to symbols directly, saving a copy per word).
  bool byte_level = false;

  void clear() {
    pieces.clear();
    storage.clear();
    byte_level = false;
  }
};

class HfPreTokenizer {
 public:
  enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

  // `config` is the tokenizer.json "pre_tokenizer" value (null: the text is one word). Unknown
  // types give kUnimplemented naming the type.
  static Result<HfPreTokenizer> parse(const nlohmann::json& config);

  // Splits one section of normalized text (the text between added tokens) into words, appending to
  // `out`. `section_index` counts sections from 0 (Metaspace's prepend_scheme "first").
  void pre_tokenize(std::string_view text, size_t section_index, PreTokens& out) const;

  bool empty() const { return steps_.empty(); }
  // True when the last step is ByteLevel (the pipeline ends in byte-level pieces).
  bool ends_byte_level() const { return !steps_.empty() && steps_.back().kind == Kind::kByteLevel; }

 private:
  enum class Kind { kSplit, kByteLevel, kMetaspace, kDigits, kWhitespaceSplit };
  struct Step {
    Kind kind = Kind::kSplit;
    std::shared_ptr<UnicodeRegex> regex;  // Split; ByteLevel with use_regex
    Behavior behavior = Behavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;   // ByteLevel
    std::string replacement;         // Metaspace
    int prepend_scheme = 0;          // Metaspace: 0 always, 1 first, 2 never
    bool split = true;               // Metaspace
    bool individual_digits = false;  // Digits
  };
  static Status add(const nlohmann::json& config, std::vector<Step>& steps);
  void apply(const Step& step, std::string_view piece, bool first_piece, size_t section_index,
             PreTokens& out) const;

  std::vector<Step> steps_;
};

// Splits `text` into pieces by `spans` (sorted, non-overlapping matches) the way the Rust
// tokenizers' SplitDelimiterBehavior does; `invert` swaps matches and gaps first.
void split_by_spans(std::string_view text, const std::vector<std::pair<size_t, size_t>>& spans,
                    HfPreTokenizer::Behavior behavior, bool invert,
                    std::vector<std::string_view>& out);

}  // namespace turbine::tokenizer
