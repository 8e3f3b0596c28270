#include "structured/automaton.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>

namespace turbine::structured {
namespace {

constexpr int64_t kInf = std::numeric_limits<int64_t>::max() / 4;

// One rule's DFA with local state ids; state 0 is the start.
struct RuleDfa {
  int32_t n = 0;
  std::vector<int32_t> next;  // n * classes
  std::vector<std::vector<Automaton::RuleEdge>> redges;
  std::vector<uint8_t> final;
};

std::string key_of(const std::vector<int32_t>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int32_t));
}

class Determinizer {
 public:
  Determinizer(const Nfa& nfa, const std::array<uint8_t, 256>& cls, int32_t n_classes)
      : nfa_(nfa), cls_(cls), n_classes_(n_classes), stamp_(nfa.edges.size(), 0) {}

  // Returns false when more than `budget` DFA states would be needed.
  bool run(RuleDfa& out, size_t budget) {
    std::vector<std::vector<int32_t>> sets;
    std::unordered_map<std::string, int32_t> ids;
    const auto intern = [&](std::vector<int32_t> set) -> int32_t {
      std::string k = key_of(set);
      auto it = ids.find(k);
      if (it != ids.end()) return it->second;
      const auto id = static_cast<int32_t>(sets.size());
      ids.emplace(std::move(k), id);
      sets.push_back(std::move(set));
      return id;
    };
    intern(closure({nfa_.start}));
    std::vector<std::vector<int32_t>> buckets(static_cast<size_t>(n_classes_));
    for (size_t d = 0; d < sets.size(); ++d) {
      if (sets.size() > budget) return false;
      for (auto& b : buckets) b.clear();
      std::vector<std::pair<int32_t, int32_t>> rule_targets;  // (rule, nfa state)
      bool final = false;
      for (int32_t s : sets[d]) {
        if (s == nfa_.accept) final = true;
        for (const NfaEdge& e : nfa_.edges[static_cast<size_t>(s)]) {
          if (e.kind == NfaEdge::Kind::kBytes) {
            for (int32_t c = cls_[e.lo]; c <= cls_[e.hi]; ++c) {
              buckets[static_cast<size_t>(c)].push_back(e.to);
            }
          } else if (e.kind == NfaEdge::Kind::kRule) {
            rule_targets.emplace_back(e.rule, e.to);
          }
        }
      }
      std::vector<int32_t> row(static_cast<size_t>(n_classes_), -1);
      for (int32_t c = 0; c < n_classes_; ++c) {
        if (!buckets[static_cast<size_t>(c)].empty()) {
          row[static_cast<size_t>(c)] = intern(closure(buckets[static_cast<size_t>(c)]));
        }
      }
      std::sort(rule_targets.begin(), rule_targets.end());
      std::vector<Automaton::RuleEdge> redges;
      for (size_t i = 0; i < rule_targets.size();) {
        size_t j = i;
        std::vector<int32_t> targets;
        while (j < rule_targets.size() && rule_targets[j].first == rule_targets[i].first) {
          targets.push_back(rule_targets[j].second);
          ++j;
        }
        redges.push_back({rule_targets[i].first, intern(closure(targets))});
        i = j;
      }
      out.next.insert(out.next.end(), row.begin(), row.end());
      out.redges.push_back(std::move(redges));
      out.final.push_back(final ? 1 : 0);
    }
    out.n = static_cast<int32_t>(sets.size());
    return sets.size() <= budget;
  }

 private:
  std::vector<int32_t> closure(const std::vector<int32_t>& seeds) {
    ++generation_;
    std::vector<int32_t> out;
    std::vector<int32_t> work;
    for (int32_t s : seeds) {
      if (stamp_[static_cast<size_t>(s)] != generation_) {
        stamp_[static_cast<size_t>(s)] = generation_;
        work.push_back(s);
      }
    }
    while (!work.empty()) {
      const int32_t s = work.back();
      work.pop_back();
      out.push_back(s);
      for (const NfaEdge& e : nfa_.edges[static_cast<size_t>(s)]) {
        if (e.kind == NfaEdge::Kind::kEpsilon && stamp_[static_cast<size_t>(e.to)] != generation_) {
          stamp_[static_cast<size_t>(e.to)] = generation_;
          work.push_back(e.to);
        }
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  const Nfa& nfa_;
  const std::array<uint8_t, 256>& cls_;
  int32_t n_classes_;
  std::vector<uint32_t> stamp_;
  uint32_t generation_ = 0;
};

// Whether the rule can reach a final state using byte edges and edges to `usable` rules.
bool can_complete(const RuleDfa& dfa, int32_t n_classes, const std::vector<uint8_t>& usable) {
  std::vector<uint8_t> seen(static_cast<size_t>(dfa.n), 0);
  std::vector<int32_t> work = {0};
  seen[0] = 1;
  while (!work.empty()) {
    const int32_t s = work.back();
    work.pop_back();
    if (dfa.final[static_cast<size_t>(s)]) return true;
    const auto visit = [&](int32_t t) {
      if (t >= 0 && !seen[static_cast<size_t>(t)]) {
        seen[static_cast<size_t>(t)] = 1;
        work.push_back(t);
      }
    };
    for (int32_t c = 0; c < n_classes; ++c) {
      visit(dfa.next[static_cast<size_t>(s) * static_cast<size_t>(n_classes) +
                     static_cast<size_t>(c)]);
    }
    for (const auto& e : dfa.redges[static_cast<size_t>(s)]) {
      if (usable[static_cast<size_t>(e.rule)]) visit(e.ret);
    }
  }
  return false;
}

// Keeps the states reachable from the start that can also reach a final state; renumbers them.
RuleDfa trim(const RuleDfa& dfa, int32_t n_classes, const std::vector<uint8_t>& productive) {
  const auto n = static_cast<size_t>(dfa.n);
  const auto nc = static_cast<size_t>(n_classes);
  std::vector<std::vector<int32_t>> preds(n);
  for (size_t s = 0; s < n; ++s) {
    for (size_t c = 0; c < nc; ++c) {
      const int32_t t = dfa.next[s * nc + c];
      if (t >= 0) preds[static_cast<size_t>(t)].push_back(static_cast<int32_t>(s));
    }
    for (const auto& e : dfa.redges[s]) {
      if (productive[static_cast<size_t>(e.rule)]) {
        preds[static_cast<size_t>(e.ret)].push_back(static_cast<int32_t>(s));
      }
    }
  }
  std::vector<uint8_t> co(n, 0);
  std::vector<int32_t> work;
  for (size_t s = 0; s < n; ++s) {
    if (dfa.final[s]) {
      co[s] = 1;
      work.push_back(static_cast<int32_t>(s));
    }
  }
  while (!work.empty()) {
    const int32_t s = work.back();
    work.pop_back();
    for (int32_t p : preds[static_cast<size_t>(s)]) {
      if (!co[static_cast<size_t>(p)]) {
        co[static_cast<size_t>(p)] = 1;
        work.push_back(p);
      }
    }
  }
  std::vector<int32_t> map(n, -1);
  std::vector<int32_t> order;
  if (co[0]) {
    map[0] = 0;
    order.push_back(0);
    for (size_t i = 0; i < order.size(); ++i) {
      const auto s = static_cast<size_t>(order[i]);
      const auto visit = [&](int32_t t) {
        if (t >= 0 && co[static_cast<size_t>(t)] && map[static_cast<size_t>(t)] < 0) {
          map[static_cast<size_t>(t)] = static_cast<int32_t>(order.size());
          order.push_back(t);
        }
      };
      for (size_t c = 0; c < nc; ++c) visit(dfa.next[s * nc + c]);
      for (const auto& e : dfa.redges[s]) {
        if (productive[static_cast<size_t>(e.rule)]) visit(e.ret);
      }
    }
  }
  RuleDfa out;
  out.n = static_cast<int32_t>(order.size());
  for (int32_t old : order) {
    const auto s = static_cast<size_t>(old);
    for (size_t c = 0; c < nc; ++c) {
      const int32_t t = dfa.next[s * nc + c];
      out.next.push_back(t >= 0 ? map[static_cast<size_t>(t)] : -1);
    }
    std::vector<Automaton::RuleEdge> redges;
    for (const auto& e : dfa.redges[s]) {
      if (productive[static_cast<size_t>(e.rule)] && map[static_cast<size_t>(e.ret)] >= 0) {
        redges.push_back({e.rule, map[static_cast<size_t>(e.ret)]});
      }
    }
    out.redges.push_back(std::move(redges));
    out.final.push_back(dfa.final[s]);
  }
  return out;
}

}  // namespace

Result<Automaton> build_automaton(const Grammar& grammar, const CompileLimits& limits) {
  const auto& rules = grammar.rules();
  if (rules.empty()) return invalid_argument("the grammar has no rules");
  if (rules.size() > limits.max_rules) {
    return invalid_argument("the grammar has " + std::to_string(rules.size()) +
                            " rules, more than the limit of " + std::to_string(limits.max_rules));
  }
  if (grammar.nfa_states() > limits.max_nfa_states) {
    return invalid_argument("the constraint is too large: its automaton exceeds the state limit");
  }
  for (const Rule& r : rules) {
    if (r.nfa.edges.empty()) return invalid_argument("rule '" + r.name + "' has no definition");
  }

  Automaton a;
  a.root_ = grammar.root();
  // Byte classes: a new class starts at every range boundary of every rule.
  std::array<bool, 257> starts{};
  starts[0] = true;
  for (const Rule& r : rules) {
    for (const auto& edges : r.nfa.edges) {
      for (const NfaEdge& e : edges) {
        if (e.kind != NfaEdge::Kind::kBytes) continue;
        starts[e.lo] = true;
        starts[static_cast<size_t>(e.hi) + 1] = true;
      }
    }
  }
  int32_t cls = -1;
  for (int b = 0; b < 256; ++b) {
    if (starts[static_cast<size_t>(b)]) ++cls;
    a.byte_class_[static_cast<size_t>(b)] = static_cast<uint8_t>(cls);
  }
  a.n_classes_ = cls + 1;
  const int32_t nc = a.n_classes_;
  a.class_byte_.assign(static_cast<size_t>(nc), 0);
  std::vector<int> rank(static_cast<size_t>(nc), 4);  // 0 printable, 1 space, 2 other ASCII
  for (int b = 0; b < 256; ++b) {
    const int r = (b > 0x20 && b < 0x7F) ? 0 : b == 0x20 ? 1 : b < 0x80 ? 2 : 3;
    const size_t c = a.byte_class_[static_cast<size_t>(b)];
    if (r < rank[c]) {
      rank[c] = r;
      a.class_byte_[c] = static_cast<uint8_t>(b);
    }
  }

  // Determinize every rule (twice the final budget: trimming removes states).
  std::vector<RuleDfa> dfas(rules.size());
  size_t budget = limits.max_dfa_states * 2;
  for (size_t r = 0; r < rules.size(); ++r) {
    Determinizer det(rules[r].nfa, a.byte_class_, nc);
    if (!det.run(dfas[r], budget)) {
      return invalid_argument("the constraint is too large: determinizing rule '" + rules[r].name +
                              "' exceeds the state limit");
    }
    budget -= static_cast<size_t>(dfas[r].n);
  }

  // Productive rules (those that can complete), to a fixpoint; then trim dead states.
  std::vector<uint8_t> productive(rules.size(), 0);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < rules.size(); ++r) {
      if (!productive[r] && can_complete(dfas[r], nc, productive)) {
        productive[r] = 1;
        changed = true;
      }
    }
  }
  const auto root = static_cast<size_t>(grammar.root());
  if (!productive[root]) {
    return invalid_argument("the constraint matches no complete output (rule '" + rules[root].name +
                            "' can never finish)");
  }
  for (size_t r = 0; r < rules.size(); ++r) {
    if (productive[r]) dfas[r] = trim(dfas[r], nc, productive);
  }

  // Rules reachable from the root get global state numbers.
  std::vector<uint8_t> reachable(rules.size(), 0);
  std::vector<size_t> order = {root};
  reachable[root] = 1;
  for (size_t i = 0; i < order.size(); ++i) {
    for (const auto& redges : dfas[order[i]].redges) {
      for (const auto& e : redges) {
        if (!reachable[static_cast<size_t>(e.rule)]) {
          reachable[static_cast<size_t>(e.rule)] = 1;
          order.push_back(static_cast<size_t>(e.rule));
        }
      }
    }
  }
  a.rule_start_.assign(rules.size(), -1);
  size_t total = 0;
  for (size_t r : order) {
    a.rule_start_[r] = static_cast<int32_t>(total);
    total += static_cast<size_t>(dfas[r].n);
  }
  if (total > limits.max_dfa_states) {
    return invalid_argument("the constraint is too large: " + std::to_string(total) +
                            " automaton states, more than the limit of " +
                            std::to_string(limits.max_dfa_states));
  }
  for (const Rule& r : rules) a.rule_names_.push_back(r.name);
  a.next_.assign(total * static_cast<size_t>(nc), -1);
  a.flags_.assign(total, 0);
  a.rule_of_.assign(total, -1);
  a.rule_edge_begin_.assign(total + 1, 0);
  // Rules in `order` are numbered consecutively, so walking them in that order fills the CSR.
  for (size_t r : order) {
    const RuleDfa& d = dfas[r];
    const int32_t base = a.rule_start_[r];
    for (int32_t s = 0; s < d.n; ++s) {
      const auto g = static_cast<size_t>(base + s);
      uint8_t flags = d.final[static_cast<size_t>(s)] ? Automaton::kFinal : 0;
      for (int32_t c = 0; c < nc; ++c) {
        const int32_t t =
            d.next[static_cast<size_t>(s) * static_cast<size_t>(nc) + static_cast<size_t>(c)];
        if (t >= 0) {
          a.next_[g * static_cast<size_t>(nc) + static_cast<size_t>(c)] = base + t;
          flags |= Automaton::kHasBytes;
        }
      }
      for (const auto& e : d.redges[static_cast<size_t>(s)]) {
        a.rule_edges_.push_back({e.rule, base + e.ret});
        flags |= Automaton::kHasRules;
      }
      a.rule_edge_begin_[g + 1] = static_cast<int32_t>(a.rule_edges_.size());
      a.flags_[g] = flags;
      a.rule_of_[g] = static_cast<int32_t>(r);
    }
  }

  // Nullable states (reach their rule's end without bytes) and nullable rules, to a fixpoint.
  std::vector<uint8_t> nullable_state(total, 0);
  a.rule_nullable_.assign(rules.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t s = total; s-- > 0;) {
      if (nullable_state[s]) continue;
      bool n = a.flags_[s] & Automaton::kFinal;
      for (auto* e = a.rule_edges_begin(static_cast<int32_t>(s));
           !n && e != a.rule_edges_end(static_cast<int32_t>(s)); ++e) {
        n = a.rule_nullable_[static_cast<size_t>(e->rule)] &&
            nullable_state[static_cast<size_t>(e->ret)];
      }
      if (n) {
        nullable_state[s] = 1;
        changed = true;
        const auto r = static_cast<size_t>(a.rule_of_[s]);
        if (static_cast<int32_t>(s) == a.rule_start_[r]) a.rule_nullable_[r] = true;
      }
    }
  }

  // Left recursion: a rule that can call itself before consuming a byte.
  {
    std::vector<std::vector<int32_t>> left_calls(rules.size());
    for (size_t r : order) {
      std::vector<int32_t> work = {a.rule_start_[r]};
      std::vector<int32_t> seen = work;
      while (!work.empty()) {
        const int32_t s = work.back();
        work.pop_back();
        for (auto* e = a.rule_edges_begin(s); e != a.rule_edges_end(s); ++e) {
          left_calls[r].push_back(e->rule);
          if (a.rule_nullable_[static_cast<size_t>(e->rule)] &&
              std::find(seen.begin(), seen.end(), e->ret) == seen.end()) {
            seen.push_back(e->ret);
            work.push_back(e->ret);
          }
        }
      }
    }
    std::vector<uint8_t> color(rules.size(), 0);  // 0 new, 1 on stack, 2 done
    for (size_t start : order) {
      if (color[start]) continue;
      std::vector<std::pair<size_t, size_t>> stack = {{start, 0}};
      color[start] = 1;
      while (!stack.empty()) {
        auto& [r, i] = stack.back();
        if (i < left_calls[r].size()) {
          const auto q = static_cast<size_t>(left_calls[r][i++]);
          if (color[q] == 1) {
            return invalid_argument("rule '" + rules[q].name +
                                    "' is left-recursive (it can reach itself before matching "
                                    "any character); rewrite it with repetition");
          }
          if (color[q] == 0) {
            color[q] = 1;
            stack.emplace_back(q, 0);
          }
        } else {
          color[r] = 2;
          stack.pop_back();
        }
      }
    }
  }

  // Shortest completion per state (Bellman-Ford; states run backwards, which suits chains).
  a.min_completion_.assign(total, kInf);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t s = total; s-- > 0;) {
      int64_t best = (a.flags_[s] & Automaton::kFinal) ? 0 : kInf;
      for (int32_t c = 0; c < nc; ++c) {
        const int32_t t = a.next_[s * static_cast<size_t>(nc) + static_cast<size_t>(c)];
        if (t >= 0) best = std::min(best, 1 + a.min_completion_[static_cast<size_t>(t)]);
      }
      for (auto* e = a.rule_edges_begin(static_cast<int32_t>(s));
           e != a.rule_edges_end(static_cast<int32_t>(s)); ++e) {
        const int64_t inner =
            a.min_completion_[static_cast<size_t>(a.rule_start_[static_cast<size_t>(e->rule)])];
        best = std::min(best, inner + a.min_completion_[static_cast<size_t>(e->ret)]);
      }
      best = std::min(best, kInf);
      if (best < a.min_completion_[s]) {
        a.min_completion_[s] = best;
        changed = true;
      }
    }
  }

  // FIRST per state and FOLLOW per rule, as byte sets.
  std::vector<ByteSet> class_bytes(static_cast<size_t>(nc), ByteSet{});
  for (int b = 0; b < 256; ++b) {
    class_bytes[a.byte_class_[static_cast<size_t>(b)]][static_cast<size_t>(b) >> 6] |= uint64_t{1}
                                                                                       << (b & 63);
  }
  const auto merge = [](ByteSet& into, const ByteSet& from) {
    bool changed = false;
    for (size_t i = 0; i < 4; ++i) {
      const uint64_t v = into[i] | from[i];
      if (v != into[i]) {
        into[i] = v;
        changed = true;
      }
    }
    return changed;
  };
  std::vector<ByteSet> first(total, ByteSet{});
  for (size_t s = 0; s < total; ++s) {
    for (int32_t c = 0; c < nc; ++c) {
      if (a.next_[s * static_cast<size_t>(nc) + static_cast<size_t>(c)] >= 0) {
        merge(first[s], class_bytes[static_cast<size_t>(c)]);
      }
    }
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t s = total; s-- > 0;) {
      for (auto* e = a.rule_edges_begin(static_cast<int32_t>(s));
           e != a.rule_edges_end(static_cast<int32_t>(s)); ++e) {
        const auto q = static_cast<size_t>(e->rule);
        changed |= merge(first[s], first[static_cast<size_t>(a.rule_start_[q])]);
        if (a.rule_nullable_[q]) changed |= merge(first[s], first[static_cast<size_t>(e->ret)]);
      }
    }
  }
  a.follow_.assign(rules.size(), ByteSet{});
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t s = 0; s < total; ++s) {
      for (auto* e = a.rule_edges_begin(static_cast<int32_t>(s));
           e != a.rule_edges_end(static_cast<int32_t>(s)); ++e) {
        ByteSet f = first[static_cast<size_t>(e->ret)];
        if (nullable_state[static_cast<size_t>(e->ret)]) {
          merge(f, a.follow_[static_cast<size_t>(a.rule_of_[s])]);
        }
        changed |= merge(a.follow_[static_cast<size_t>(e->rule)], f);
      }
    }
  }
  return a;
}

std::vector<int32_t> Automaton::token_equivalence(int max_token_bytes, int32_t* num_ids) const {
  const auto n = static_cast<size_t>(num_states());
  const auto nc = static_cast<size_t>(n_classes_);
  // cls[s] after k rounds: states with equal classes behave alike on every string of <= k bytes
  // (rule references to nullable rules compare their return states exactly).
  std::vector<int32_t> cls(n);
  bool any_final = false, any_other = false;
  for (size_t s = 0; s < n; ++s) {
    cls[s] = (flags_[s] & kFinal) ? 1 : 0;
    (cls[s] ? any_final : any_other) = true;
  }
  int32_t n_cls = (any_final ? 1 : 0) + (any_other ? 1 : 0);
  std::vector<int32_t> sig;
  for (int round = 1; round < max_token_bytes; ++round) {
    std::unordered_map<std::string, int32_t> ids;
    std::vector<int32_t> next_cls(n);
    for (size_t s = 0; s < n; ++s) {
      sig.clear();
      sig.push_back(rule_of_[s]);
      sig.push_back(cls[s]);
      for (size_t c = 0; c < nc; ++c) {
        const int32_t t = next_[s * nc + c];
        if (t >= 0) {
          sig.push_back(static_cast<int32_t>(c));
          sig.push_back(cls[static_cast<size_t>(t)]);
        }
      }
      sig.push_back(-1);
      for (auto* e = rule_edges_begin(static_cast<int32_t>(s));
           e != rule_edges_end(static_cast<int32_t>(s)); ++e) {
        sig.push_back(e->rule);
        if (rule_nullable_[static_cast<size_t>(e->rule)]) {
          sig.push_back(1);
          sig.push_back(e->ret);
        } else {
          sig.push_back(0);
          sig.push_back(cls[static_cast<size_t>(e->ret)]);
        }
      }
      const auto [it, inserted] = ids.emplace(key_of(sig), static_cast<int32_t>(ids.size()));
      next_cls[s] = it->second;
    }
    const auto count = static_cast<int32_t>(ids.size());
    cls.swap(next_cls);
    if (count == n_cls) break;  // stable: further rounds split nothing
    n_cls = count;
  }
  // A state's entry is decided by its rule (FOLLOW) and where its own byte edges lead.
  std::unordered_map<std::string, int32_t> ids;
  std::vector<int32_t> out(n, -1);
  for (size_t s = 0; s < n; ++s) {
    if (!(flags_[s] & kHasBytes)) continue;
    sig.clear();
    sig.push_back(rule_of_[s]);
    for (size_t c = 0; c < nc; ++c) {
      const int32_t t = next_[s * nc + c];
      sig.push_back(t >= 0 ? cls[static_cast<size_t>(t)] : -1);
    }
    const auto [it, inserted] = ids.emplace(key_of(sig), static_cast<int32_t>(ids.size()));
    out[s] = it->second;
  }
  *num_ids = static_cast<int32_t>(ids.size());
  return out;
}

size_t Automaton::memory_bytes() const {
  return next_.size() * sizeof(int32_t) + flags_.size() + rule_edge_begin_.size() * 4 +
         rule_edges_.size() * sizeof(RuleEdge) + rule_of_.size() * 4 + min_completion_.size() * 8 +
         follow_.size() * sizeof(ByteSet);
}

}  // namespace turbine::structured
