// What the two tokenizer.json tokenizers share (HfTokenizer, the LLM path; PipelineTokenizer,
// encoders with offsets): the added tokens and the trie that finds them in text, the id tables,
// BOS/EOS, tokenizer_config.json's special tokens, and decoding through HfDecoder. Each derived
// class parses its own model, normalizer, pre-tokenizer and post-processor.
//
// Immutable after the derived class's build(); all methods are const and safe from any thread.
#pragma once

#include <bitset>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "tokenizer/hf_decoder.h"
#include "tokenizer/tokenizer.h"

namespace turbine::tokenizer {

// One tokenizer.json "added_tokens" entry.
struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool single_word = false;
};

// Byte trie over added-token contents, for leftmost-longest matching.
class AddedTokenTrie {
 public:
  // The first token inserted for a key keeps it.
  void insert(std::string_view key, int32_t token);
  bool empty() const { return nodes_.size() == 1; }
  // Whether some key starts with `c` (a cheap test before match()).
  bool may_start(char c) const { return first_bytes_.test(static_cast<uint8_t>(c)); }
  // The token of the longest key at text[i], or -1; `end` receives the match's end.
  int32_t match(std::string_view text, size_t i, size_t& end) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t token = -1;
  };
  std::vector<Node> nodes_{Node{}};
  std::bitset<256> first_bytes_;
};

class HfTokenizerBase : public Tokenizer {
 public:
  ~HfTokenizerBase() override;

  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  bool is_special(int32_t id) const override;
  std::string piece(int32_t id) const override;
  bool skipped_specials_are_invisible() const override { return true; }

  // The id of an added-token or vocabulary string, -1 if none.
  int32_t token_to_id(std::string_view token) const;

 protected:
  HfTokenizerBase();

  // The model's id for a vocabulary string, -1 if none.
  virtual int32_t model_token_id(std::string_view token) const = 0;

  // tokenizer.json "added_tokens" into added_; `max_id` grows to cover their ids.
  Status parse_added_tokens(const nlohmann::json& tokenizer, int32_t& max_id);
  // Sizes the id tables for `n` ids: no pieces, nothing added or special.
  void size_tables(size_t n);
  // Added tokens' pieces (over the vocabulary's) and their added / special flags.
  void mark_added_tokens();
  // Each added token goes into raw_trie_, or into normalized_trie_ when it is matched after
  // normalization (`normalize` set: the tokenizer has a normalizer).
  void build_tries(const std::function<std::string(const std::string&)>& normalize);
  // tokenizer_config.json: additional_special_tokens become special, bos_token / eos_token name
  // BOS / EOS (-1 where the config names none).
  void apply_config(const nlohmann::json& config);
  // Error unless every id of the post-processor is in the vocabulary.
  Status check_post_processor_ids(const std::vector<int32_t>& ids) const;
  // texts_ from pieces_ through the decoder.
  void build_texts();
  // texts_[id] (in range), less the decoder's start-of-text strip when nothing came before.
  std::string decoded_text(int32_t prev_id, int32_t id) const;

  HfDecoder decoder_;
  std::vector<AddedToken> added_;
  AddedTokenTrie raw_trie_;          // added tokens matched before normalization
  AddedTokenTrie normalized_trie_;   // added tokens matched after it
  std::vector<std::string> pieces_;  // id -> vocabulary string ("" for holes)
  std::vector<std::string> texts_;   // id -> decoded bytes
  std::vector<uint8_t> special_;     // id -> 1 if special (skipped by skip_special)
  std::vector<uint8_t> is_added_;    // id -> 1 for added tokens
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
};

}  // namespace turbine::tokenizer
