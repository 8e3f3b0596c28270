// The BPE model of tokenizer.json (and of GGUF "gpt2" vocabularies): a word is split into
// characters (or, for byte-level words, bytes read through the byte-level alphabet), then the
// adjacent pair with the lowest merge rank is merged, leftmost first on ties, until no pair has a
// merge. Symbols missing from the vocabulary fall back to <0xXX> byte tokens (byte_fallback), else
// to the unknown token (fused when fuse_unk), else are dropped — as in Hugging Face tokenizers.
//
// Results are cached per word (bounded; words longer than kMaxCachedWordBytes are not cached).
//
// Thread ownership: built by one thread (add_token/add_merge/finish), then immutable except for
// the word cache, which is sharded and guarded by one mutex per shard; encode_word() is safe from
// any thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace turbine::tokenizer {

class BpeModel {
 public:
  struct Options {
    int32_t unk_id = -1;
    bool byte_fallback = false;
    bool fuse_unk = false;
    bool ignore_merges = false;
    std::string continuing_subword_prefix;
    std::string end_of_word_suffix;
    size_t cache_words = 1 << 16;  // 0 disables the cache
  };
  static constexpr size_t kMaxCachedWordBytes = 256;

  explicit BpeModel(Options options);
  ~BpeModel();

  // Builder, in order: every token, then the merges by rank (earlier = merged first).
  void add_token(std::string_view token, int32_t id);
  // A merge whose parts or result are not in the vocabulary is skipped (returns false).
  bool add_merge(std::string_view left, std::string_view right);
  void finish();

  // -1 when `token` is not in the vocabulary.
  int32_t token_id(std::string_view token) const;
  size_t n_merges() const { return merges_.size(); }

  // Appends the ids of `word`. `byte_level`: `word` is raw bytes, each read as its byte-level
  // character. Otherwise `word` must be well-formed UTF-8.
  void encode_word(std::string_view word, bool byte_level, std::vector<int32_t>& out) const;

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  struct CacheShard {
    std::mutex mutex;  // guards `words`
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> words;
  };
  static constexpr size_t kCacheShards = 32;

  void encode_uncached(std::string_view word, bool byte_level, std::vector<int32_t>& out) const;
  void emit_unknown(std::string_view bytes, std::vector<int32_t>& out) const;

  Options options_;
  TokenMap vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::array<int32_t, 256> byte_level_ids_{};     // id of each byte's byte-level character, or -1
  std::array<int32_t, 256> byte_fallback_ids_{};  // id of "<0xXX>", or -1
  mutable std::array<CacheShard, kCacheShards> cache_;
};

}  // namespace turbine::tokenizer
