#include "structured/token_mask_cache.h"

#include <algorithm>
#include <string>

#include "structured/pda.h"

namespace turbine::structured {
namespace {

// Rules with more call sites than this are filtered by their FOLLOW bytes only.
constexpr size_t kMaxCallSites = 64;

// Walks the vocabulary trie from one state and classifies every token.
//
// Two configurations per depth: `within` holds the paths still inside the state's rule (any
// stack they pushed sits on kBottom); when one completes the rule, the walk continues from every
// place the rule is called (its return states, each on the bottom of its own rule) in `sites`.
// A token is accepted if a `within` path consumes it (or completes the rule exactly at its end);
// uncertain if only `sites` paths survive, or one returns past a call site and the token ends
// there or goes on with a byte that can follow that site's rule (FOLLOW); else rejected. Rules
// with many call sites skip `sites` and use their own FOLLOW bytes instead. Most levels hold a
// single `within` top (inside a string, a number, a literal), which steps without the general
// Config path.
class EntryBuilder {
 public:
  EntryBuilder(const Automaton& a, const Vocabulary& v)
      : a_(a),
        v_(v),
        pda_(a, pool_),
        levels_(static_cast<size_t>(v.max_token_bytes()) + 1),
        within_(static_cast<size_t>(v.max_token_bytes()) + 1),
        sites_(static_cast<size_t>(v.max_token_bytes()) + 1),
        call_sites_(static_cast<size_t>(a.num_rules())) {
    for (int32_t st = 0; st < a.num_states(); ++st) {
      for (auto* e = a.rule_edges_begin(st); e != a.rule_edges_end(st); ++e) {
        auto& list = call_sites_[static_cast<size_t>(e->rule)];
        if (std::find(list.begin(), list.end(), e->ret) == list.end()) list.push_back(e->ret);
      }
    }
  }

  // Returns the trie steps spent.
  uint64_t build(int32_t state, MaskEntry& out) {
    pool_.clear();
    accepted_.clear();
    uncertain_.clear();
    const int32_t rule = a_.rule_of(state);
    follow_ = &a_.follow(rule);
    sites_list_ = &call_sites_[static_cast<size_t>(rule)];
    use_sites_ = sites_list_->size() <= kMaxCallSites;
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
    levels_[0] = Level{};
    levels_[0].kind = Level::kSingle;
    levels_[0].single = Top{state, kBottom};
    sites_[0].clear();
    uint64_t work = 0;
    int32_t i = 1;  // node 0 is the root
    while (i < n_nodes) {
      const Vocabulary::TrieNode& node = trie[static_cast<size_t>(i)];
      const size_t d = node.depth;
      ++work;
      const Level& prev = levels_[d - 1];
      Level& cur = levels_[d];
      cur.uncertain =
          prev.uncertain || (prev.escape && byte_set_has(prev.escape_follow, node.byte));
      step(d, node.byte);
      const bool within_alive = cur.kind != Level::kDead;
      const bool alive = within_alive || cur.sites_alive;
      if (node.tok_end > node.tok_begin) {
        const bool accepted = within_alive || cur.popped;
        const bool uncertain = cur.uncertain || cur.sites_alive || (cur.escape && cur.sites_escape);
        for (int32_t k = node.tok_begin; k < node.tok_end; ++k) {
          if (accepted) {
            accepted_.push_back(k);
          } else if (uncertain) {
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
      } else if (cur.escape) {
        for (int32_t c = i + 1; c < node.skip; c = trie[static_cast<size_t>(c)].skip) {
          ++work;
          if (byte_set_has(cur.escape_follow, trie[static_cast<size_t>(c)].byte)) {
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
    Kind kind = kDead;          // the `within` paths
    bool popped = false;        // a `within` path completed the rule at this depth
    bool sites_alive = false;   // sites_[depth] has tops
    bool escape = false;        // a path left the known context here: the bytes after it decide
    bool sites_escape = false;  // ... and it was a `sites` path (the token may end here)
    bool uncertain = false;     // a token through here depends on the unknown stack
    ByteSet escape_follow{};    // bytes that may come after the escape
    Top single{0, kBottom};     // kSingle: the one `within` top; kConfig: within_[depth]
  };

  // levels_[d] (and within_[d], sites_[d]) from depth d - 1 and `byte`.
  void step(size_t d, uint8_t byte) {
    const Level& prev = levels_[d - 1];
    Level& cur = levels_[d];
    cur.popped = false;
    cur.escape = false;
    cur.sites_escape = false;
    cur.escape_follow = ByteSet{};
    step_within(d, byte);
    Config& sites = sites_[d];
    sites.clear();
    if (prev.sites_alive) pda_.step(sites_[d - 1], byte, sites);
    if (cur.popped) {
      if (use_sites_) {
        for (int32_t ret : *sites_list_) {
          pda_.close(Top{ret, bottom_of_rule(a_.rule_of(ret))}, sites);
        }
        if (sites.tops.size() > 1) {
          std::sort(sites.tops.begin(), sites.tops.end());
          sites.tops.erase(std::unique(sites.tops.begin(), sites.tops.end()), sites.tops.end());
        }
      } else {
        cur.escape = true;
        cur.escape_follow = *follow_;
      }
    }
    cur.sites_alive = !sites.tops.empty();
    for (int32_t b : sites.bottoms) {
      cur.escape = true;
      cur.sites_escape = true;
      const ByteSet& f = a_.follow(rule_of_bottom(b));
      for (size_t w = 0; w < 4; ++w) cur.escape_follow[w] |= f[w];
    }
  }

  void step_within(size_t d, uint8_t byte) {
    const Level& prev = levels_[d - 1];
    Level& cur = levels_[d];
    Config& c = within_[d];
    if (prev.kind == Level::kDead) {
      cur.kind = Level::kDead;
      return;
    }
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
      c.clear();
      pda_.close(Top{next, prev.single.parent}, c);
      if (c.tops.size() > 1) {
        std::sort(c.tops.begin(), c.tops.end());
        c.tops.erase(std::unique(c.tops.begin(), c.tops.end()), c.tops.end());
      }
    } else {
      pda_.step(within_[d - 1], byte, c);
    }
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
  std::vector<Config> within_;
  std::vector<Config> sites_;
  std::vector<std::vector<int32_t>> call_sites_;  // per rule: distinct return states
  const std::vector<int32_t>* sites_list_ = nullptr;
  const ByteSet* follow_ = nullptr;
  bool use_sites_ = false;
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
    if (cache.stats_.memory_bytes > limits.max_mask_bytes) {
      return invalid_argument(
          "the constraint is too large: its precomputed token masks exceed the memory limit");
    }
  }
  cache.stats_.entries = n_ids;
  cache.stats_.memory_bytes += cache.entry_of_state_.size() * 4;
  return cache;
}

}  // namespace turbine::structured
