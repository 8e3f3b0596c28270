// tokenizer.json "normalizer" with offsets: every step keeps AlignedText's byte alignment to the
// original text (see aligned_text.h), as Hugging Face tokenizers' NormalizedString does.
//
// Supports BertNormalizer (clean_text, handle_chinese_chars, strip_accents, lowercase), NFC, NFD,
// NFKC, NFKD, Lowercase, StripAccents, Strip, Replace, Prepend, Nmt, Precompiled (SentencePiece
// charsmaps, applied per extended grapheme cluster, then per character, as the Rust crate does)
// and Sequence. Character
// classes follow the Rust crate (the reference the Python binding uses): Unicode White_Space,
// general categories from utf8proc, per-character full lowercase mapping without final-sigma
// context.
//
// Immutable after parse(); normalize() is const and safe from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "tokenizer/aligned_text.h"
#include "tokenizer/hf_normalizer.h"
#include "tokenizer/precompiled_charsmap.h"

namespace turbine::tokenizer {

class AlignedNormalizer {
 public:
  // `config` is the tokenizer.json "normalizer" value (null: no normalization). Unknown types
  // give kUnimplemented naming the type.
  static Result<AlignedNormalizer> parse(const nlohmann::json& config);

  bool empty() const { return steps_.empty(); }
  // `text.text` must be well-formed UTF-8; it stays so.
  void normalize(AlignedText& text) const;
  // The same without offsets (added tokens' normalized form).
  std::string normalize(std::string_view text) const;

 private:
  using Step = NormalizerStep;
  using Kind = Step::Kind;

  std::vector<Step> steps_;
};

// Character classes shared with the pre-tokenizers and models (Rust `char` semantics).
bool is_unicode_whitespace(uint32_t cp);  // the White_Space property
bool is_bert_punctuation(uint32_t cp);    // ASCII punctuation or a P* category
bool is_chinese_char(uint32_t cp);        // BertNormalizer's CJK ideograph ranges
bool is_unicode_numeric(uint32_t cp);     // Nd, Nl, No

}  // namespace turbine::tokenizer
