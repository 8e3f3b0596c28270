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
#include "tokenizer/utf8.h"

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

// How a split treats the matches (the Rust tokenizers' SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// One step of a tokenizer.json "pre_tokenizer"; HfPreTokenizer and AlignedPreTokenizer parse the
// same steps and run them on plain and on aligned text.
struct PreTokenizerStep {
  enum class Kind {
    kSplit,
    kByteLevel,
    kMetaspace,
    kDigits,
    kWhitespaceSplit,
    kBert,
    kPunctuation
  };
  Kind kind = Kind::kSplit;
  std::shared_ptr<UnicodeRegex> regex;  // Split, ByteLevel with use_regex, Whitespace
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;   // ByteLevel
  std::string replacement;         // Metaspace
  int prepend_scheme = 0;          // Metaspace: 0 always, 1 first, 2 never
  bool split = true;               // Metaspace
  bool individual_digits = false;  // Digits
};

// Appends the steps of `config` (null: none; a Sequence is flattened). BertPreTokenizer and
// Punctuation are accepted only `with_bert`; other unknown types give kUnimplemented naming the
// type.
Status parse_pre_tokenizer_steps(const nlohmann::json& config, bool with_bert,
                                 std::vector<PreTokenizerStep>& steps);

class HfPreTokenizer {
 public:
  using Behavior = SplitBehavior;

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
  using Step = PreTokenizerStep;
  using Kind = Step::Kind;

  void apply(const Step& step, std::string_view piece, bool first_piece, size_t section_index,
             PreTokens& out) const;

  std::vector<Step> steps_;
};

// Splits `text` into pieces by `spans` (sorted, non-overlapping matches) the way the Rust
// tokenizers' SplitDelimiterBehavior does; `invert` swaps matches and gaps first.
void split_by_spans(std::string_view text, const std::vector<std::pair<size_t, size_t>>& spans,
                    HfPreTokenizer::Behavior behavior, bool invert,
                    std::vector<std::string_view>& out);

// Appends the spans of characters of `text` for which `pred` holds: each alone (`single`) or
// maximal runs.
template <typename Pred>
void char_spans(std::string_view text, Pred pred, bool single,
                std::vector<std::pair<size_t, size_t>>& spans) {
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    const uint32_t cp = next_code_point(text, i);
    if (!pred(cp)) continue;
    if (!single && !spans.empty() && spans.back().second == start) {
      spans.back().second = i;
    } else {
      spans.emplace_back(start, i);
    }
  }
}

}  // namespace turbine::tokenizer
