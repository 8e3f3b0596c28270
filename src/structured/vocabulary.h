// A tokenizer's vocabulary as the matcher sees it: the bytes each token adds to the output, which
// ids may never be sampled under a constraint (special and control tokens), which ids end the
// output (allowed only where the constraint is complete), and a byte trie over the rest.
//
// Built once per tokenizer (tens of milliseconds for 150k tokens); immutable and shared by every
// compiled grammar and matcher of that model, from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace turbine::tokenizer {
class Tokenizer;
}

namespace turbine::structured {

struct VocabularyOptions {
  // Ids that end generation (e.g. Llama 3's <|eot_id|>) besides the tokenizer's EOS.
  std::vector<int32_t> extra_stop_ids;
  // Bits in a mask: the model's logit count when it exceeds the tokenizer's vocabulary (padding
  // ids are never allowed). 0: the tokenizer's vocabulary size.
  int32_t mask_size = 0;
};

class Vocabulary {
 public:
  // One trie node in pre-order: the node's subtree is [index, skip); the tokens that end here are
  // trie_tokens()[tok_begin, tok_end).
  struct TrieNode {
    int32_t skip = 0;
    int32_t tok_begin = 0;
    int32_t tok_end = 0;
    uint16_t depth = 0;
    uint8_t byte = 0;
  };

  static Result<std::shared_ptr<const Vocabulary>> from_tokenizer(
      const tokenizer::Tokenizer& tok, const VocabularyOptions& options = {});
  // `token_bytes[id]`; `excluded[id]` marks ids never allowed (may be shorter than the bytes).
  static Result<std::shared_ptr<const Vocabulary>> from_tokens(std::vector<std::string> token_bytes,
                                                               std::vector<uint8_t> excluded,
                                                               std::vector<int32_t> stop_ids,
                                                               int32_t mask_size = 0);

  int32_t size() const { return mask_size_; }
  size_t mask_words() const { return (static_cast<size_t>(mask_size_) + 31) / 32; }
  // Empty for ids that are excluded, stop ids or out of range.
  const std::string& bytes(int32_t id) const;
  bool is_stop(int32_t id) const;
  const std::vector<int32_t>& stop_ids() const { return stop_ids_; }
  int max_token_bytes() const { return max_token_bytes_; }
  const std::vector<TrieNode>& trie() const { return trie_; }
  const std::vector<int32_t>& trie_tokens() const { return trie_tokens_; }
  size_t num_matchable() const { return trie_tokens_.size(); }
  size_t memory_bytes() const;

 private:
  Vocabulary() = default;
  void build_trie();

  int32_t mask_size_ = 0;
  std::vector<std::string> bytes_;  // empty for ids never matched by bytes
  std::vector<uint8_t> stop_;
  std::vector<int32_t> stop_ids_;
  std::vector<TrieNode> trie_;
  std::vector<int32_t> trie_tokens_;  // matchable ids sorted by their bytes
  int max_token_bytes_ = 0;
};

}  // namespace turbine::structured
