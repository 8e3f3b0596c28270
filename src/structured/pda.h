// Running the pushdown automaton over bytes. A configuration is the set of stack tops the input so
// far can be in (the grammar may be ambiguous); stacks are persistent, hash-consed linked lists in
// a StackPool, so tops that share a caller share its node and equal stacks have equal ids.
//
// Not thread-safe: a StackPool and its Pda belong to one matcher (or one cache-building walk).
#pragma once

#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "structured/automaton.h"

namespace turbine::structured {

inline constexpr int32_t kBottom = -1;  // the empty stack below the root (or below a walk's start)
// Any negative parent is a bottom; a cache walk (token_mask_cache.cpp) puts the call sites of its
// rule on bottom_of_rule(r), the bottom a path reaches when it returns past a site in rule r.
inline constexpr int32_t bottom_of_rule(int32_t rule) {
  return -2 - rule;
}
inline constexpr int32_t rule_of_bottom(int32_t bottom) {
  return -2 - bottom;
}

// The state being matched and the caller frames under it (a StackPool node id, or kBottom).
struct Top {
  int32_t state;
  int32_t parent;
  friend bool operator==(const Top&, const Top&) = default;
  friend bool operator<(const Top& a, const Top& b) {
    return a.state != b.state ? a.state < b.state : a.parent < b.parent;
  }
};

struct Config {
  std::vector<Top> tops;  // each top's state has byte edges
  // A path completed the rule at the bottom: for a matcher, the root is complete (the output may
  // end here); for a cache walk, the walk's rule returned into its unknown caller.
  bool popped = false;
  std::vector<int32_t> bottoms;  // the bottoms other than kBottom that were reached
  void clear() {
    tops.clear();
    popped = false;
    bottoms.clear();
  }
};

class StackPool {
 public:
  // The frame "return to `ret` in the caller, whose own stack is `parent`", interned.
  int32_t push(int32_t ret, int32_t parent);
  const Top& node(int32_t id) const { return nodes_[static_cast<size_t>(id)]; }
  size_t size() const { return nodes_.size(); }
  // Forgets every node created since size() was `mark` (scratch work during mask filling).
  void truncate(size_t mark);
  void clear();

 private:
  static uint64_t key(int32_t ret, int32_t parent) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(ret)) << 32) |
           static_cast<uint32_t>(parent);
  }
  std::vector<Top> nodes_;
  std::unordered_map<uint64_t, int32_t> index_;
};

class Pda {
 public:
  Pda(const Automaton& a, StackPool& pool) : a_(a), pool_(pool) {}

  // Adds to `out` the tops reachable from `seed` without consuming bytes (entering referenced
  // rules, returning from completed ones); sets out.popped if the bottom is reached.
  void close(Top seed, Config& out);
  // out = the configuration after `byte` from `in` (out is cleared first). Returns whether any
  // top or the bottom survived.
  bool step(const Config& in, uint8_t byte, Config& out);
  // Initial configuration of the whole grammar.
  void start(Config& out);

 private:
  bool seen(const Top& t);
  static uint64_t key(const Top& t) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(t.state)) << 32) |
           static_cast<uint32_t>(t.parent);
  }

  const Automaton& a_;
  StackPool& pool_;
  std::vector<Top> work_;
  std::vector<Top> seen_;
  std::unordered_set<uint64_t> seen_set_;  // used once seen_ reaches 64 tops
};

}  // namespace turbine::structured
