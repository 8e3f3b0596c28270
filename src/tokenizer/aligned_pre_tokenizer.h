// tokenizer.json "pre_tokenizer" with offsets: splits a normalized AlignedText into words, each
// keeping its alignment to the original text.
//
// Supports BertPreTokenizer, Whitespace, WhitespaceSplit, Metaspace, ByteLevel, Split,
// Punctuation, Digits and Sequence, with the Rust crate's semantics (Metaspace's "first" prepend
// scheme looks at whether the piece starts the original text). A ByteLevel step leaves the words
// as raw bytes and sets `byte_level`: the BPE model reads them through the byte-level alphabet.
//
// Immutable after parse(); split() is const and safe from any thread.
#pragma once

#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "tokenizer/aligned_text.h"
#include "tokenizer/hf_pre_tokenizer.h"

namespace turbine::tokenizer {

class AlignedPreTokenizer {
 public:
  // `config` is the tokenizer.json "pre_tokenizer" value (null: the text is one word).
  static Result<AlignedPreTokenizer> parse(const nlohmann::json& config);

  // Appends the words of `text` to `words` (empty words are dropped). Returns whether the words
  // are byte-level (a ByteLevel step ran).
  bool split(AlignedText text, std::vector<AlignedText>& words) const;

 private:
  using Behavior = SplitBehavior;
  using Step = PreTokenizerStep;
  using Kind = Step::Kind;
  static void apply(const Step& step, const AlignedText& piece, std::vector<AlignedText>& out);

  std::vector<Step> steps_;
};

}  // namespace turbine::tokenizer
