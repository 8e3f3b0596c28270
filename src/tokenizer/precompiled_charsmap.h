// SentencePiece's precompiled normalization map (tokenizer.json "Precompiled" normalizer, as
// XLM-RoBERTa, mBART, T5 and other SentencePiece conversions carry it): a darts-clone double-array
// trie over UTF-8 byte strings whose values index NUL-terminated replacement strings.
//
// Blob layout: little-endian u32 trie size in bytes, the trie (u32 units), the replacements.
// transform() follows the Rust `spm_precompiled` crate that Hugging Face tokenizers uses: it
// returns the replacement of the *first* (shortest) key that prefixes the input.
//
// Immutable after parse(); any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turbine::tokenizer {

class PrecompiledCharsmap {
 public:
  // `blob`: the decoded bytes (tokenizer.json stores them base64-encoded).
  static Result<PrecompiledCharsmap> parse(std::string_view blob);
  std::optional<std::string_view> transform(std::string_view key) const;
  bool empty() const { return trie_.empty(); }

 private:
  std::vector<uint32_t> trie_;
  std::string normalized_;
};

// Standard base64 (padding optional); nullopt on a character outside the alphabet.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace turbine::tokenizer
