// The compiled, vocabulary-independent form of a grammar: every rule's NFA determinized into a
// DFA over byte classes, with rule-reference edges (the pushdown part) kept as edges. All rules'
// states share one global numbering. Dead ends are trimmed: from every state some complete string
// is reachable, so a matcher that follows the automaton can always finish.
//
// Immutable once built; shared read-only by every matcher of the grammar (any thread).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "structured/grammar.h"

namespace turbine::structured {

using ByteSet = std::array<uint64_t, 4>;

inline bool byte_set_has(const ByteSet& s, uint8_t b) {
  return (s[b >> 6] >> (b & 63)) & 1;
}

class Automaton {
 public:
  struct RuleEdge {
    int32_t rule;  // pushed rule
    int32_t ret;   // state of the caller after the rule completes
  };
  enum Flags : uint8_t { kFinal = 1, kHasBytes = 2, kHasRules = 4 };

  int32_t num_states() const { return static_cast<int32_t>(flags_.size()); }
  int32_t num_rules() const { return static_cast<int32_t>(rule_start_.size()); }
  int32_t num_classes() const { return n_classes_; }
  int32_t root_rule() const { return root_; }

  int32_t next(int32_t state, uint8_t byte) const {
    return next_[static_cast<size_t>(state) * static_cast<size_t>(n_classes_) + byte_class_[byte]];
  }
  int32_t next_by_class(int32_t state, int32_t cls) const {
    return next_[static_cast<size_t>(state) * static_cast<size_t>(n_classes_) +
                 static_cast<size_t>(cls)];
  }
  uint8_t byte_class(uint8_t byte) const { return byte_class_[byte]; }
  // A byte of class `cls`, printable ASCII when the class has one.
  uint8_t class_byte(int32_t cls) const { return class_byte_[static_cast<size_t>(cls)]; }
  uint8_t flags(int32_t state) const { return flags_[static_cast<size_t>(state)]; }
  bool is_final(int32_t state) const { return flags(state) & kFinal; }
  bool has_bytes(int32_t state) const { return flags(state) & kHasBytes; }
  // Only byte edges: stepping into it needs no closure work.
  bool is_simple(int32_t state) const { return flags(state) == kHasBytes; }
  const RuleEdge* rule_edges_begin(int32_t state) const {
    return rule_edges_.data() + rule_edge_begin_[static_cast<size_t>(state)];
  }
  const RuleEdge* rule_edges_end(int32_t state) const {
    return rule_edges_.data() + rule_edge_begin_[static_cast<size_t>(state) + 1];
  }
  int32_t rule_of(int32_t state) const { return rule_of_[static_cast<size_t>(state)]; }
  int32_t rule_start(int32_t rule) const { return rule_start_[static_cast<size_t>(rule)]; }
  const std::string& rule_name(int32_t rule) const {
    return rule_names_[static_cast<size_t>(rule)];
  }
  bool rule_nullable(int32_t rule) const { return rule_nullable_[static_cast<size_t>(rule)]; }
  // Bytes that can come right after `rule` completes, in any context.
  const ByteSet& follow(int32_t rule) const { return follow_[static_cast<size_t>(rule)]; }
  // Fewest bytes that take `state` to the end of its rule (rule references at their shortest).
  int64_t min_completion(int32_t state) const {
    return min_completion_[static_cast<size_t>(state)];
  }

  // Per state, an id such that two states with the same id accept, reject and leave uncertain
  // exactly the same tokens of at most `max_token_bytes` bytes (their first byte taken by the
  // state's own byte edges; see token_mask_cache.h). -1 for states without byte edges.
  std::vector<int32_t> token_equivalence(int max_token_bytes, int32_t* num_ids) const;

  size_t memory_bytes() const;

 private:
  friend Result<Automaton> build_automaton(const Grammar&, const CompileLimits&);

  int32_t n_classes_ = 1;
  int32_t root_ = 0;
  std::array<uint8_t, 256> byte_class_{};
  std::vector<uint8_t> class_byte_;
  std::vector<int32_t> next_;  // num_states * n_classes, -1 = no edge
  std::vector<uint8_t> flags_;
  std::vector<int32_t> rule_edge_begin_;  // num_states + 1
  std::vector<RuleEdge> rule_edges_;
  std::vector<int32_t> rule_of_;
  std::vector<int64_t> min_completion_;
  std::vector<int32_t> rule_start_;  // -1: rule unreachable from the root
  std::vector<std::string> rule_names_;
  std::vector<bool> rule_nullable_;
  std::vector<ByteSet> follow_;
};

// Determinizes and checks a grammar: undefined-but-referenced rules, left recursion (which a
// pushdown matcher cannot run), a root that matches nothing, and the state limits are errors.
Result<Automaton> build_automaton(const Grammar& grammar, const CompileLimits& limits);

}  // namespace turbine::structured
