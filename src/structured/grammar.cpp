#include "structured/grammar.h"

#include <string>

namespace turbine::structured {

Status CompileLimits::validate() const {
  if (max_input_bytes == 0 || max_nesting_depth <= 0 || max_repeat < 0 || max_rules == 0 ||
      max_nfa_states == 0 || max_dfa_states == 0 || max_mask_work == 0 || max_mask_bytes == 0) {
    return invalid_argument("structured compile limits must be positive");
  }
  return Status::ok();
}

int32_t Grammar::add_rule(std::string name) {
  rules_.push_back(Rule{std::move(name), Nfa{}});
  return static_cast<int32_t>(rules_.size() - 1);
}

size_t Grammar::nfa_states() const {
  size_t n = 0;
  for (const Rule& r : rules_) n += r.nfa.edges.size();
  return n;
}

int32_t NfaBuilder::new_state() {
  if (!ok()) return 0;
  if (budget_->states_left == 0) {
    budget_->status = invalid_argument(
        "the constraint is too large: its automaton exceeds the state limit (simplify the "
        "schema, grammar or regex, or lower repetition counts)");
    return 0;
  }
  --budget_->states_left;
  nfa_.edges.emplace_back();
  return static_cast<int32_t>(nfa_.edges.size() - 1);
}

void NfaBuilder::add_bytes(int32_t from, uint8_t lo, uint8_t hi, int32_t to) {
  if (!ok() || nfa_.edges.empty()) return;
  NfaEdge e;
  e.kind = NfaEdge::Kind::kBytes;
  e.lo = lo;
  e.hi = hi;
  e.to = to;
  nfa_.edges[static_cast<size_t>(from)].push_back(e);
}

void NfaBuilder::add_rule(int32_t from, int32_t rule, int32_t to) {
  if (!ok() || nfa_.edges.empty()) return;
  NfaEdge e;
  e.kind = NfaEdge::Kind::kRule;
  e.rule = rule;
  e.to = to;
  nfa_.edges[static_cast<size_t>(from)].push_back(e);
}

void NfaBuilder::add_epsilon(int32_t from, int32_t to) {
  if (!ok() || nfa_.edges.empty()) return;
  NfaEdge e;
  e.kind = NfaEdge::Kind::kEpsilon;
  e.to = to;
  nfa_.edges[static_cast<size_t>(from)].push_back(e);
}

Frag NfaBuilder::empty() {
  const int32_t s = new_state();
  return {s, s};
}

Frag NfaBuilder::literal(std::string_view bytes) {
  const int32_t start = new_state();
  int32_t cur = start;
  for (char c : bytes) {
    const int32_t next = new_state();
    const auto b = static_cast<uint8_t>(c);
    add_bytes(cur, b, b, next);
    cur = next;
  }
  return {start, cur};
}

Frag NfaBuilder::byte_range(uint8_t lo, uint8_t hi) {
  const int32_t s = new_state();
  const int32_t e = new_state();
  add_bytes(s, lo, hi, e);
  return {s, e};
}

Frag NfaBuilder::codepoints(const CodepointSet& set) {
  const int32_t start = new_state();
  const int32_t end = new_state();
  for (const Utf8Sequence& seq : utf8_sequences(set)) {
    int32_t cur = start;
    for (int k = 0; k < seq.length; ++k) {
      const int32_t next = k + 1 == seq.length ? end : new_state();
      add_bytes(cur, seq.lo[k], seq.hi[k], next);
      cur = next;
    }
  }
  return {start, end};
}

Frag NfaBuilder::rule_ref(int32_t rule) {
  const int32_t s = new_state();
  const int32_t e = new_state();
  add_rule(s, rule, e);
  return {s, e};
}

Frag NfaBuilder::seq(Frag a, Frag b) {
  add_epsilon(a.end, b.start);
  return {a.start, b.end};
}

Frag NfaBuilder::alt(const std::vector<Frag>& frags) {
  const int32_t s = new_state();
  const int32_t e = new_state();
  for (const Frag& f : frags) {
    add_epsilon(s, f.start);
    add_epsilon(f.end, e);
  }
  return {s, e};
}

Frag NfaBuilder::optional(Frag f) {
  const int32_t s = new_state();
  const int32_t e = new_state();
  add_epsilon(s, f.start);
  add_epsilon(f.end, e);
  add_epsilon(s, e);
  return {s, e};
}

Frag NfaBuilder::repeat(const std::function<Frag()>& gen, int min, int max) {
  Frag out = empty();
  for (int i = 0; i < min && ok(); ++i) out = seq(out, gen());
  if (max < 0) {
    // Loop: start -> body -> start, exit from start.
    const Frag body = gen();
    const int32_t hub = new_state();
    add_epsilon(out.end, hub);
    add_epsilon(hub, body.start);
    add_epsilon(body.end, hub);
    return {out.start, hub};
  }
  // Optional copies nested so that each is reachable only after the previous one.
  const int32_t end = new_state();
  add_epsilon(out.end, end);
  int32_t cur = out.end;
  for (int i = min; i < max && ok(); ++i) {
    const Frag body = gen();
    add_epsilon(cur, body.start);
    add_epsilon(body.end, end);
    cur = body.end;
  }
  return {out.start, end};
}

Nfa NfaBuilder::finish(Frag f) {
  Nfa out = std::move(nfa_);
  out.start = f.start;
  out.accept = f.end;
  if (out.edges.empty()) {
    out.edges.emplace_back();
    out.start = out.accept = 0;
  }
  nfa_ = Nfa{};
  return out;
}

}  // namespace turbine::structured
