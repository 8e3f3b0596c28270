#include "structured/vocabulary.h"

#include <algorithm>

#include "tokenizer/tokenizer.h"

namespace turbine::structured {
namespace {
const std::string kEmpty;
}

Result<std::shared_ptr<const Vocabulary>> Vocabulary::from_tokenizer(
    const tokenizer::Tokenizer& tok, const VocabularyOptions& options) {
  const int32_t n = tok.vocab_size();
  std::vector<std::string> bytes(static_cast<size_t>(n));
  std::vector<uint8_t> excluded(static_cast<size_t>(n), 0);
  for (int32_t id = 0; id < n; ++id) {
    if (tok.is_special(id)) {
      excluded[static_cast<size_t>(id)] = 1;
    } else {
      bytes[static_cast<size_t>(id)] = tok.token_bytes(id);
    }
  }
  std::vector<int32_t> stops;
  if (tok.eos_id() >= 0) stops.push_back(tok.eos_id());
  stops.insert(stops.end(), options.extra_stop_ids.begin(), options.extra_stop_ids.end());
  return from_tokens(std::move(bytes), std::move(excluded), std::move(stops), options.mask_size);
}

Result<std::shared_ptr<const Vocabulary>> Vocabulary::from_tokens(
    std::vector<std::string> token_bytes, std::vector<uint8_t> excluded,
    std::vector<int32_t> stop_ids, int32_t mask_size) {
  const auto n = static_cast<int32_t>(token_bytes.size());
  if (n == 0) return invalid_argument("the vocabulary is empty");
  if (mask_size != 0 && mask_size < n) {
    return invalid_argument("mask size " + std::to_string(mask_size) +
                            " is smaller than the vocabulary (" + std::to_string(n) + ")");
  }
  std::shared_ptr<Vocabulary> v(new Vocabulary());
  v->mask_size_ = mask_size == 0 ? n : mask_size;
  v->stop_.assign(static_cast<size_t>(n), 0);
  std::sort(stop_ids.begin(), stop_ids.end());
  stop_ids.erase(std::unique(stop_ids.begin(), stop_ids.end()), stop_ids.end());
  for (int32_t id : stop_ids) {
    if (id < 0 || id >= n) {
      return invalid_argument("stop token id " + std::to_string(id) + " is outside the vocabulary");
    }
    v->stop_[static_cast<size_t>(id)] = 1;
  }
  v->stop_ids_ = std::move(stop_ids);
  for (int32_t id = 0; id < n; ++id) {
    const auto i = static_cast<size_t>(id);
    if ((i < excluded.size() && excluded[i]) || v->stop_[i]) token_bytes[i].clear();
    if (token_bytes[i].size() > 0xFFFF) token_bytes[i].clear();  // no real token is this long
  }
  v->bytes_ = std::move(token_bytes);
  v->build_trie();
  return std::shared_ptr<const Vocabulary>(std::move(v));
}

const std::string& Vocabulary::bytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= bytes_.size()) return kEmpty;
  return bytes_[static_cast<size_t>(id)];
}

bool Vocabulary::is_stop(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < stop_.size() && stop_[static_cast<size_t>(id)];
}

void Vocabulary::build_trie() {
  for (size_t id = 0; id < bytes_.size(); ++id) {
    if (!bytes_[id].empty()) trie_tokens_.push_back(static_cast<int32_t>(id));
  }
  std::sort(trie_tokens_.begin(), trie_tokens_.end(), [&](int32_t a, int32_t b) {
    const std::string& x = bytes_[static_cast<size_t>(a)];
    const std::string& y = bytes_[static_cast<size_t>(b)];
    return x != y ? x < y : a < b;
  });
  trie_.push_back(TrieNode{});      // root
  std::vector<int32_t> path = {0};  // node per depth along the previous token
  const std::string* prev = nullptr;
  for (size_t i = 0; i < trie_tokens_.size(); ++i) {
    const std::string& cur = bytes_[static_cast<size_t>(trie_tokens_[i])];
    max_token_bytes_ = std::max(max_token_bytes_, static_cast<int>(cur.size()));
    size_t lcp = 0;
    if (prev != nullptr) {
      const size_t m = std::min(prev->size(), cur.size());
      while (lcp < m && (*prev)[lcp] == cur[lcp]) ++lcp;
    }
    // Close the nodes below the common prefix.
    while (path.size() > lcp + 1) {
      trie_[static_cast<size_t>(path.back())].skip = static_cast<int32_t>(trie_.size());
      path.pop_back();
    }
    for (size_t d = lcp; d < cur.size(); ++d) {
      TrieNode node;
      node.depth = static_cast<uint16_t>(d + 1);
      node.byte = static_cast<uint8_t>(cur[d]);
      node.tok_begin = node.tok_end = static_cast<int32_t>(i);
      path.push_back(static_cast<int32_t>(trie_.size()));
      trie_.push_back(node);
    }
    TrieNode& end = trie_[static_cast<size_t>(path.back())];
    if (end.tok_end == end.tok_begin) end.tok_begin = static_cast<int32_t>(i);
    end.tok_end = static_cast<int32_t>(i) + 1;
    prev = &cur;
  }
  while (!path.empty()) {
    trie_[static_cast<size_t>(path.back())].skip = static_cast<int32_t>(trie_.size());
    path.pop_back();
  }
}

size_t Vocabulary::memory_bytes() const {
  size_t n = trie_.size() * sizeof(TrieNode) + trie_tokens_.size() * 4 + stop_.size();
  for (const std::string& b : bytes_) n += b.capacity() + sizeof(std::string);
  return n;
}

}  // namespace turbine::structured
