#include "structured/token_mask_cache.h"

#include <algorithm>
#include <string>

#include "structured/pda.h"

namespace turbine::structured {
namespace {

// Walks the vocabulary trie from one state and classifies every token. Most levels hold a single
// stack top (inside a string, a number, a literal), which step without the general Config path.
class EntryBuilder {
 public:
  EntryBuilder(const Automaton& a, const Vocabulary& v)
      : a_(a),
        v_(v),
        pda_(a, pool_),
        levels_(static_cast<size_t>(v.max_token_bytes()) + 1),
        cfg_(static_cast<size_t>(v.max_token_bytes()) + 1) {}

  // Returns the trie steps spent.
  uint64_t build(int32_t state, MaskEntry& out) {
    pool_.clear();
    accepted_.clear();
    uncertain_.clear();
    const ByteSet& follow = a_.follow(a_.rule_of(state));
    const auto& trie = v_.trie();
    const auto& toks = v_.trie_tokens();
    const auto n_nodes = static_cast<int32_t>(trie.size());
    const auto subtree_end_token = [&](int32_t node) {
      const int32_t skip = trie[static_cast<size_t>(node)].skip;
      return skip < n_nodes ? trie[static_cast<size_t>(skip)].tok_begin
                            : static_cast<int32_t>(toks.size());
    };
    const auto mark_uncertain = [&](int32_t tok_from, int32_t tok_to) {
      for (int32_t k = tok_from; k < tok_to; ++k) uncertain_.push_back(k);
    };
    levels_[0] = Level{Level::kSingle, false, false, Top{state, kBottom}};
    uint64_t work = 0;
    int32_t i = 1;  // node 0 is the root
    while (i < n_nodes) {
      const Vocabulary::TrieNode& node = trie[static_cast<size_t>(i)];
      const size_t d = node.depth;
      ++work;
      const Level& prev = levels_[d - 1];
      Level& cur = levels_[d];
      cur.uncertain = prev.uncertain || (prev.popped && byte_set_has(follow, node.byte));
      step(d, node.byte);
      const bool alive = cur.kind != Level::kDead;
      if (node.tok_end > node.tok_begin) {
        const bool accepted = alive || cur.popped;
        for (int32_t k = node.tok_begin; k < node.tok_end; ++k) {
          if (accepted) {
            accepted_.push_back(k);
          } else if (cur.uncertain) {
            uncertain_.push_back(k);
          }
        }
      }
      if (alive) {
        ++i;  // descend
        continue;
      }
      // Dead below this node: its descendants are uncertain or rejected wholesale.
      const int32_t from = node.tok_end;  // tokens after the ones ending here
      if (cur.uncertain) {
        mark_uncertain(from, subtree_end_token(i));
      } else if (cur.popped) {
        for (int32_t c = i + 1; c < node.skip; c = trie[static_cast<size_t>(c)].skip) {
          ++work;
          if (byte_set_has(follow, trie[static_cast<size_t>(c)].byte)) {
            mark_uncertain(trie[static_cast<size_t>(c)].tok_begin, subtree_end_token(c));
          }
        }
      }
      i = node.skip;
    }
    work += uncertain_.size();
    finish(out);
    return work;
  }

 private:
  struct Level {
    enum Kind : uint8_t { kDead, kSingle, kConfig };
    Kind kind = kDead;
    bool popped = false;     // some path returned into the unknown caller at this depth
    bool uncertain = false;  // ... at this depth or above, followed by a FOLLOW byte
    Top single{0, kBottom};  // kSingle: the one top; kConfig: cfg_[depth]
  };

  // levels_[d] from levels_[d - 1] and `byte`.
  void step(size_t d, uint8_t byte) {
    const Level& prev = levels_[d - 1];
    Level& cur = levels_[d];
    cur.popped = false;
    if (prev.kind == Level::kSingle) {
      const int32_t next = a_.next(prev.single.state, byte);
      if (next < 0) {
        cur.kind = Level::kDead;
        return;
      }
      if (a_.is_simple(next)) {
        cur.kind = Level::kSingle;
        cur.single = Top{next, prev.single.parent};
        return;
      }
      Config& c = cfg_[d];
      c.clear();
      pda_.close(Top{next, prev.single.parent}, c);
      if (c.tops.size() > 1) {
        std::sort(c.tops.begin(), c.tops.end());
        c.tops.erase(std::unique(c.tops.begin(), c.tops.end()), c.tops.end());
      }
    } else {
      pda_.step(cfg_[d - 1], byte, cfg_[d]);
    }
    Config& c = cfg_[d];
    cur.popped = c.popped;
    if (c.tops.empty()) {
      cur.kind = Level::kDead;
    } else if (c.tops.size() == 1) {
      cur.kind = Level::kSingle;
      cur.single = c.tops[0];
    } else {
      cur.kind = Level::kConfig;
    }
  }

  const Automaton& a_;
  const Vocabulary& v_;
  StackPool pool_;
  Pda pda_;
  std::vector<Level> levels_;
  std::vector<Config> cfg_;
  std::vector<int32_t> accepted_;
  std::vector<int32_t> uncertain_;

  void finish(MaskEntry& out) {
    const auto& toks = v_.trie_tokens();
    const size_t words = v_.mask_words();
    if (accepted_.size() > words) {
      out.accepted_bits.assign(words, 0);
      for (int32_t k : accepted_) {
        const auto id = static_cast<uint32_t>(toks[static_cast<size_t>(k)]);
        out.accepted_bits[id >> 5] |= 1u << (id & 31);
      }
    } else {
      out.accepted_ids.reserve(accepted_.size());
      for (int32_t k : accepted_) out.accepted_ids.push_back(toks[static_cast<size_t>(k)]);
      std::sort(out.accepted_ids.begin(), out.accepted_ids.end());
    }
    // Trie positions are in byte order already.
    std::sort(uncertain_.begin(), uncertain_.end());
    out.uncertain.reserve(uncertain_.size());
    out.uncertain_lcp.reserve(uncertain_.size());
    const std::string* prev = nullptr;
    for (int32_t k : uncertain_) {
      const int32_t id = toks[static_cast<size_t>(k)];
      const std::string& cur = v_.bytes(id);
      size_t lcp = 0;
      if (prev != nullptr) {
        const size_t m = std::min(prev->size(), cur.size());
        while (lcp < m && (*prev)[lcp] == cur[lcp]) ++lcp;
      }
      out.uncertain.push_back(id);
      out.uncertain_lcp.push_back(static_cast<uint16_t>(lcp));
      prev = &cur;
    }
  }
};

size_t entry_bytes(const MaskEntry& e) {
  return e.accepted_bits.size() * 4 + e.accepted_ids.size() * 4 + e.uncertain.size() * 6 +
         sizeof(MaskEntry);
}

}  // namespace

Result<TokenMaskCache> TokenMaskCache::build(const Automaton& a, const Vocabulary& v,
                                             const CompileLimits& limits) {
  TokenMaskCache cache;
  int32_t n_ids = 0;
  cache.entry_of_state_ = a.token_equivalence(std::max(1, v.max_token_bytes()), &n_ids);
  cache.entries_.resize(static_cast<size_t>(n_ids));
  std::vector<int32_t> representative(static_cast<size_t>(n_ids), -1);
  for (int32_t s = 0; s < a.num_states(); ++s) {
    const int32_t e = cache.entry_of_state_[static_cast<size_t>(s)];
    if (e < 0) continue;
    ++cache.stats_.states_with_bytes;
    if (representative[static_cast<size_t>(e)] < 0) representative[static_cast<size_t>(e)] = s;
  }
  EntryBuilder builder(a, v);
  for (int32_t e = 0; e < n_ids; ++e) {
    cache.stats_.work += builder.build(representative[static_cast<size_t>(e)],
                                       cache.entries_[static_cast<size_t>(e)]);
    if (cache.stats_.work > limits.max_mask_work) {
      return invalid_argument(
          "the constraint is too large: precomputing its token masks exceeds the work limit");
    }
    cache.stats_.uncertain_total += cache.entries_[static_cast<size_t>(e)].uncertain.size();
    cache.stats_.memory_bytes += entry_bytes(cache.entries_[static_cast<size_t>(e)]);
  }
  cache.stats_.entries = n_ids;
  cache.stats_.memory_bytes += cache.entry_of_state_.size() * 4;
  return cache;
}

}  // namespace turbine::structured
