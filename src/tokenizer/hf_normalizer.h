// tokenizer.json "normalizer": NFC/NFD/NFKC/NFKD, Prepend, Replace, Lowercase, Strip,
// StripAccents and Sequence (flattened into one list of steps).
//
// Immutable after parse(); normalize() is const and safe from any thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "tokenizer/unicode_regex.h"

namespace turbine::tokenizer {

class PrecompiledCharsmap;

// One step of a tokenizer.json "normalizer"; HfNormalizer and AlignedNormalizer parse the same
// steps and run them on plain and on aligned text.
struct NormalizerStep {
  enum class Kind {
    kNfc,
    kNfd,
    kNfkc,
    kNfkd,
    kPrepend,
    kReplace,
    kLowercase,
    kStrip,
    kStripAccents,
    kBertClean,
    kBertChinese,
    kNmt,
    kPrecompiled
  };
  Kind kind;
  std::string text;                                               // Prepend / Replace content
  std::shared_ptr<UnicodeRegex> regex;                            // Replace
  std::shared_ptr<const PrecompiledCharsmap> charsmap = nullptr;  // Precompiled
  bool left = false;                                              // Strip
  bool right = false;
};

// Appends the steps of `config` (null: none; a Sequence is flattened). BertNormalizer, Nmt and
// Precompiled are accepted only `with_bert`; other unknown types give kUnimplemented naming the
// type.
Status parse_normalizer_steps(const nlohmann::json& config, bool with_bert,
                              std::vector<NormalizerStep>& steps);

class HfNormalizer {
 public:
  // `config` is the tokenizer.json "normalizer" value (null gives an empty normalizer). Unknown
  // types give kUnimplemented naming the type.
  static Result<HfNormalizer> parse(const nlohmann::json& config);

  bool empty() const { return steps_.empty(); }
  // `text` must be well-formed UTF-8; it stays so.
  void normalize(std::string& text) const;

 private:
  using Step = NormalizerStep;
  using Kind = Step::Kind;

  std::vector<Step> steps_;
};

// Unicode normalization of well-formed UTF-8 (utf8proc). `form`: "NFC", "NFD", "NFKC", "NFKD".
std::string unicode_normalize(std::string_view text, std::string_view form);

// JavaScript's String.prototype.trim whitespace (what tokenizers.js strips around added tokens).
bool is_js_whitespace(uint32_t cp);

}  // namespace turbine::tokenizer
