// The grammar IR every front end (JSON Schema, regex, choice, GBNF) produces: a list of rules, each
// an NFA over bytes whose edges are byte ranges, references to other rules, or epsilon. Rule
// references make the whole a pushdown automaton (recursion); automaton.h determinizes each rule.
//
// Plain values; built on one thread, then moved into the compiler.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "structured/codepoints.h"

namespace turbine::structured {

// Bounds on compile work (time and memory) for one constraint. Exceeding one is kInvalidArgument
// naming the limit: constraints come from requests.
struct CompileLimits {
  size_t max_input_bytes = 256 * 1024;  // schema / grammar / regex / choice text
  int max_nesting_depth = 64;           // schema nesting; regex and grammar group nesting
  int max_repeat = 2000;                // m and n of {m,n}, minLength/maxLength, minItems/maxItems
  size_t max_rules = 4096;
  size_t max_nfa_states = 400'000;  // summed over rules, before determinization
  size_t max_dfa_states = 100'000;  // summed over rules, after minimization
  // Trie steps spent precomputing token masks (about 10 ns each): bounds compile time per
  // (grammar, vocabulary) to a few seconds of one core, deterministically.
  uint64_t max_mask_work = 400'000'000;
  // Memory of the precomputed token masks.
  size_t max_mask_bytes = size_t{256} << 20;

  Status validate() const;
};

struct NfaEdge {
  enum class Kind : uint8_t { kBytes, kRule, kEpsilon };
  Kind kind = Kind::kEpsilon;
  uint8_t lo = 0;  // kBytes: inclusive byte range
  uint8_t hi = 0;
  int32_t rule = -1;  // kRule: the rule matched before moving to `to`
  int32_t to = -1;
};

struct Nfa {
  std::vector<std::vector<NfaEdge>> edges;  // per state
  int32_t start = 0;
  int32_t accept = 0;  // the single accepting state
};

struct Rule {
  std::string name;
  Nfa nfa;
};

class Grammar {
 public:
  // Declares a rule (its body comes later through set_body) so bodies can reference each other.
  int32_t add_rule(std::string name);
  void set_body(int32_t rule, Nfa nfa) { rules_[static_cast<size_t>(rule)].nfa = std::move(nfa); }
  void set_root(int32_t rule) { root_ = rule; }

  int32_t root() const { return root_; }
  const std::vector<Rule>& rules() const { return rules_; }
  size_t nfa_states() const;

 private:
  std::vector<Rule> rules_;
  int32_t root_ = 0;
};

// A piece of NFA with one entry and one exit state (the exit has no outgoing edges yet).
struct Frag {
  int32_t start = 0;
  int32_t end = 0;
};

// Builds one rule's NFA. A budget shared by all rules of a grammar bounds the states; once it
// is exceeded the builder stops allocating and status() reports the error.
class NfaBuilder {
 public:
  struct Budget {
    size_t states_left = 0;
    Status status;
  };
  explicit NfaBuilder(Budget* budget) : budget_(budget) {}

  int32_t new_state();
  void add_bytes(int32_t from, uint8_t lo, uint8_t hi, int32_t to);
  void add_rule(int32_t from, int32_t rule, int32_t to);
  void add_epsilon(int32_t from, int32_t to);

  Frag empty();
  Frag literal(std::string_view bytes);
  Frag byte_range(uint8_t lo, uint8_t hi);
  Frag codepoints(const CodepointSet& set);  // one UTF-8 encoded member
  Frag rule_ref(int32_t rule);
  Frag seq(Frag a, Frag b);
  Frag alt(const std::vector<Frag>& frags);  // no alternatives: matches nothing
  Frag optional(Frag f);
  // `gen` builds a fresh copy of the repeated piece per call. max < 0: unbounded.
  Frag repeat(const std::function<Frag()>& gen, int min, int max);

  bool ok() const { return budget_->status.is_ok(); }
  Nfa finish(Frag f);

 private:
  Budget* budget_;
  Nfa nfa_;
};

}  // namespace turbine::structured
