// The WordPiece and Unigram models of tokenizer.json, for encoder tokenizers: one pre-tokenized
// word in, tokens with their byte ranges in that word out (the pipeline maps them back to the
// input through the word's alignment).
//
//   WordPiece: greedy longest-match-first from the start of the word, continuation pieces carry
//     `continuing_subword_prefix` ("##"); a word longer than max_input_chars_per_word characters,
//     or one with a part that matches nothing, becomes one unknown token covering the word.
//   Unigram: the Viterbi best segmentation under the pieces' log-probability scores (the Rust
//     crate's encode_optimized: doubles, first candidate kept on ties); characters no piece
//     covers score min_score - 10 as the unknown token, consecutive unknowns are fused; with
//     byte_fallback an unknown run becomes its UTF-8 bytes as <0xXX> tokens when they all exist.
//
// Immutable after construction; encode_word() is const and safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace turbine::tokenizer {

struct SubToken {
  int32_t id = -1;
  uint32_t begin = 0;  // bytes within the word
  uint32_t end = 0;
};

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using PieceMap = std::unordered_map<std::string, int32_t, TransparentHash, std::equal_to<>>;

class SubwordModel {
 public:
  virtual ~SubwordModel() = default;
  // `word` is well-formed UTF-8.
  virtual void encode_word(std::string_view word, std::vector<SubToken>& out) const = 0;
  // Every piece with its id (the tokenizer's vocabulary before added tokens).
  virtual const PieceMap& pieces() const = 0;
};

// `model` is tokenizer.json's "model" object of type WordPiece / Unigram.
Result<std::unique_ptr<SubwordModel>> make_wordpiece_model(const nlohmann::json& model);
Result<std::unique_ptr<SubwordModel>> make_unigram_model(const nlohmann::json& model);

}  // namespace turbine::tokenizer
