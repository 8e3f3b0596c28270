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

class HfNormalizer {
 public:
  // `config` is the tokenizer.json "normalizer" value (null gives an empty normalizer). Unknown
  // types give kUnimplemented naming the type.
  static Result<HfNormalizer> parse(const nlohmann::json& config);

  bool empty() const { return steps_.empty(); }
  // `text` must be well-formed UTF-8; it stays so.
  void normalize(std::string& text) const;

 private:
  enum class Kind {
    kNfc,
    kNfd,
    kNfkc,
    kNfkd,
    kPrepend,
    kReplace,
    kLowercase,
    kStrip,
    kStripAccents
  };
  struct Step {
    Kind kind;
    std::string text;                     // Prepend: the prefix; Replace: the content
    std::shared_ptr<UnicodeRegex> regex;  // Replace
    bool left = false;                    // Strip
    bool right = false;
  };
  static Status add(const nlohmann::json& config, std::vector<Step>& steps);

  std::vector<Step> steps_;
};

// Unicode normalization of well-formed UTF-8 (utf8proc). `form`: "NFC", "NFD", "NFKC", "NFKD".
std::string unicode_normalize(std::string_view text, std::string_view form);

// JavaScript's String.prototype.trim whitespace (what tokenizers.js strips around added tokens).
bool is_js_whitespace(uint32_t cp);

}  // namespace turbine::tokenizer
