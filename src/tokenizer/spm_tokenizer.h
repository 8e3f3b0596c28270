// SentencePiece-style tokenizer over a GGUF "llama" vocabulary (pieces + scores + token types).
//
// Encoding follows llama2.c's run.c, which the stories260K acceptance test compares against:
// spaces become "▁", a "▁" is prepended to non-empty text when `add_space_prefix`, the text is
// split into UTF-8 characters, and the adjacent pair whose concatenation is the highest-scoring
// vocabulary piece is merged until none is left (leftmost on ties). Characters with no piece fall
// back to their `<0xXX>` byte tokens (or UNK when the vocabulary has none).
//
// Inputs are text, not a mix of text and special tokens: "<s>" in the text is three characters,
// never BOS (chat-template special-token parsing is a separate step). Inputs are expected to be
// capped by the frontend's request size limit (positions are 32-bit).
//
// Immutable after create(); all methods are const and safe from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace turbine::tokenizer {

// GGUF tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

class SpmTokenizer final : public Tokenizer {
 public:
  // Checks that the parallel arrays agree and the special ids are in range. Missing token types
  // are inferred: `<0xXX>` pieces are bytes, BOS/EOS control, UNK unknown, the rest normal.
  static Result<std::unique_ptr<SpmTokenizer>> create(const model::VocabSpec& vocab);

  std::vector<int32_t> encode(std::string_view text, bool add_special) const override;
  std::string token_bytes(int32_t id) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  bool is_special(int32_t id) const override;
  std::string piece(int32_t id) const override;
  std::string token_text(int32_t prev_id, int32_t id, bool skip_special) const override;

  TokenType token_type(int32_t id) const;

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using PieceMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

  SpmTokenizer() = default;
  bool in_range(int32_t id) const { return id >= 0 && id < vocab_size(); }
  // Id of a piece that text may be merged into (normal and user-defined pieces), or -1.
  int32_t lookup(std::string_view text) const;

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<TokenType> types_;
  std::vector<std::string> texts_;  // decoded bytes per id: "▁" -> ' ', byte tokens -> the byte
  PieceMap mergeable_;              // piece -> id, for normal and user-defined tokens only
  std::array<int32_t, 256> byte_ids_{};  // -1 where the vocabulary has no <0xXX> token
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  int32_t unk_id_ = -1;
  bool add_bos_ = true;
  bool add_eos_ = false;
  bool add_space_prefix_ = true;
};

}  // namespace turbine::tokenizer
