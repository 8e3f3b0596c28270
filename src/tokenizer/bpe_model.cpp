#include "tokenizer/bpe_model.h"

#include <cstdio>
#include <queue>

#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace turbine::tokenizer {
namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

struct Symbol {
  int32_t id;      // -1: not in the vocabulary
  int32_t prev;    // index, -1 at the start
  int32_t next;    // index, -1 at the end
  uint32_t start;  // bytes of the word this symbol covers
  uint32_t len;    // 0 once merged into its left neighbour
};

struct Candidate {
  int32_t rank;
  int32_t left;
  int32_t right;
  int32_t left_id;
  int32_t right_id;
  int32_t new_id;
  // priority_queue pops the largest: lowest rank first, then leftmost.
  bool operator<(const Candidate& o) const {
    return rank != o.rank ? rank > o.rank : left > o.left;
  }
};

}  // namespace

BpeModel::BpeModel(Options options) : options_(std::move(options)) {
  byte_level_ids_.fill(-1);
  byte_fallback_ids_.fill(-1);
}

BpeModel::~BpeModel() = default;

void BpeModel::add_token(std::string_view token, int32_t id) {
  vocab_.emplace(std::string(token), id);
}

int32_t BpeModel::token_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

bool BpeModel::add_merge(std::string_view left, std::string_view right) {
  const int32_t a = token_id(left);
  const int32_t b = token_id(right);
  if (a < 0 || b < 0) return false;
  std::string merged(left);
  const std::string& prefix = options_.continuing_subword_prefix;
  if (!prefix.empty() && right.substr(0, prefix.size()) == prefix) {
    merged.append(right.substr(prefix.size()));
  } else {
    merged.append(right);
  }
  const int32_t m = token_id(merged);
  if (m < 0) return false;
  // The first (lowest-rank) occurrence of a pair wins, as in the reference implementations.
  merges_.emplace(pair_key(a, b), Merge{static_cast<int32_t>(merges_.size()), m});
  return true;
}

void BpeModel::finish() {
  for (int b = 0; b < 256; ++b) {
    byte_level_ids_[b] = token_id(byte_level_char(static_cast<uint8_t>(b)));
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    byte_fallback_ids_[b] = token_id(name);
  }
}

void BpeModel::emit_unknown(std::string_view bytes, std::vector<int32_t>& out) const {
  if (options_.byte_fallback) {
    bool all = true;
    for (char c : bytes) all = all && byte_fallback_ids_[static_cast<uint8_t>(c)] >= 0;
    if (all) {
      for (char c : bytes) out.push_back(byte_fallback_ids_[static_cast<uint8_t>(c)]);
      return;
    }
  }
  if (options_.unk_id < 0) return;
  if (options_.fuse_unk && !out.empty() && out.back() == options_.unk_id) return;
  out.push_back(options_.unk_id);
}

void BpeModel::encode_uncached(std::string_view word, bool byte_level,
                               std::vector<int32_t>& out) const {
  if (word.empty()) return;
  thread_local std::string mapped;
  std::string_view text = word;  // what symbols' start/len index
  if (byte_level) {
    mapped.clear();
    byte_level_encode(word, mapped);
  }
  if (options_.ignore_merges) {
    const int32_t id = token_id(byte_level ? std::string_view(mapped) : word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }

  thread_local std::vector<Symbol> symbols;
  symbols.clear();
  const bool affixes =
      !options_.continuing_subword_prefix.empty() || !options_.end_of_word_suffix.empty();
  thread_local std::string unit;
  if (byte_level && !affixes) {
    for (size_t i = 0; i < word.size(); ++i) {
      symbols.push_back({byte_level_ids_[static_cast<uint8_t>(word[i])],
                         static_cast<int32_t>(i) - 1, static_cast<int32_t>(i) + 1,
                         static_cast<uint32_t>(i), 1});
    }
  } else {
    // Characters of the (mapped) word, with the subword prefix / end-of-word suffix attached.
    if (byte_level) text = mapped;
    size_t i = 0;
    while (i < text.size()) {
      const size_t start = i;
      i += utf8_sequence_length(static_cast<uint8_t>(text[i]));
      if (i > text.size()) i = text.size();
      int32_t id;
      if (affixes) {
        unit.clear();
        if (start > 0) unit.append(options_.continuing_subword_prefix);
        unit.append(text.substr(start, i - start));
        if (i == text.size()) unit.append(options_.end_of_word_suffix);
        id = token_id(unit);
      } else {
        id = token_id(text.substr(start, i - start));
      }
      const auto n = static_cast<int32_t>(symbols.size());
      symbols.push_back(
          {id, n - 1, n + 1, static_cast<uint32_t>(start), static_cast<uint32_t>(i - start)});
    }
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  thread_local std::vector<Candidate> heap_storage;
  heap_storage.clear();
  std::priority_queue<Candidate> queue(std::less<Candidate>(), std::move(heap_storage));
  const auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const int32_t a = symbols[left].id;
    const int32_t b = symbols[right].id;
    if (a < 0 || b < 0) return;
    const auto it = merges_.find(pair_key(a, b));
    if (it == merges_.end()) return;
    queue.push({it->second.rank, left, right, a, b, it->second.new_id});
  };
  for (size_t i = 1; i < symbols.size(); ++i)
    try_add(static_cast<int32_t>(i) - 1, static_cast<int32_t>(i));

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& l = symbols[c.left];
    Symbol& r = symbols[c.right];
    if (l.len == 0 || r.len == 0 || l.next != c.right || l.id != c.left_id || r.id != c.right_id)
      continue;
    l.id = c.new_id;
    l.len += r.len;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = c.left;
    r.len = 0;
    try_add(l.prev, c.left);
    try_add(c.left, l.next);
  }

  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    if (s.id >= 0) {
      out.push_back(s.id);
    } else {
      emit_unknown(text.substr(s.start, s.len), out);
    }
  }
}

void BpeModel::encode_word(std::string_view word, bool byte_level,
                           std::vector<int32_t>& out) const {
  if (options_.cache_words == 0 || word.size() > kMaxCachedWordBytes) {
    encode_uncached(word, byte_level, out);
    return;
  }
  CacheShard& shard = cache_[std::hash<std::string_view>{}(word) % kCacheShards];
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    const auto it = shard.words.find(word);
    if (it != shard.words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t before = out.size();
  encode_uncached(word, byte_level, out);
  std::vector<int32_t> ids(out.begin() + static_cast<std::ptrdiff_t>(before), out.end());
  std::lock_guard<std::mutex> lock(shard.mutex);
  // Bounded by clearing a full shard: simpler than LRU and as good for a working set that fits.
  if (shard.words.size() >= options_.cache_words / kCacheShards + 1) shard.words.clear();
  shard.words.emplace(std::string(word), std::move(ids));
}

}  // namespace turbine::tokenizer
