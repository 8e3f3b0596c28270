// XGrammar's adaptive token-mask cache, precomputed per (grammar, vocabulary). For each automaton
// state with byte edges, every token is classified by running its bytes from that state alone
// (caller unknown):
//   accepted  - some path consumes all its bytes inside the state's rule (or completes it exactly
//               at the token's end): allowed whatever the stack below is;
//   rejected  - every path dies inside the rule, or leaves it followed by a byte that can never
//               follow the rule (FOLLOW set);
//   uncertain - only paths that return into the unknown caller survive: checked at run time
//               against the real stack.
// A step then costs one OR of the accepted set per stack top plus a few uncertain checks. States
// that no token of the vocabulary can tell apart share one entry (Automaton::token_equivalence).
//
// Immutable after build; read from any thread.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "structured/automaton.h"
#include "structured/grammar.h"
#include "structured/vocabulary.h"

namespace turbine::structured {

struct MaskEntry {
  // Accepted tokens as a bitset of mask_words() words when that is smaller, else as ids.
  std::vector<uint32_t> accepted_bits;
  std::vector<int32_t> accepted_ids;
  // Uncertain tokens in trie (byte) order, with each one's common prefix with the previous one
  // so a run-time check can reuse the configurations of the shared prefix.
  std::vector<int32_t> uncertain;
  std::vector<uint16_t> uncertain_lcp;
};

struct MaskCacheStats {
  int32_t entries = 0;
  int32_t states_with_bytes = 0;
  uint64_t work = 0;  // trie steps
  size_t uncertain_total = 0;
  size_t memory_bytes = 0;
};

class TokenMaskCache {
 public:
  static Result<TokenMaskCache> build(const Automaton& a, const Vocabulary& v,
                                      const CompileLimits& limits);

  // nullptr for states without byte edges (never a configuration's top).
  const MaskEntry* entry(int32_t state) const {
    const int32_t e = entry_of_state_[static_cast<size_t>(state)];
    return e < 0 ? nullptr : &entries_[static_cast<size_t>(e)];
  }
  int32_t entry_id(int32_t state) const { return entry_of_state_[static_cast<size_t>(state)]; }
  const MaskCacheStats& stats() const { return stats_; }

 private:
  std::vector<int32_t> entry_of_state_;
  std::vector<MaskEntry> entries_;
  MaskCacheStats stats_;
};

}  // namespace turbine::structured
