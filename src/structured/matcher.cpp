#include "structured/matcher.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

namespace turbine::structured {

Status check_start_trigger(const StartTrigger& start, const Vocabulary& vocab) {
  if (!start.open.empty() && start.end.empty())
    return invalid_argument("a reasoning start trigger that opens a block needs its end");
  for (const std::vector<int32_t>* ids : {&start.end, &start.open}) {
    if (ids->size() > kMaxTriggerIds)
      return invalid_argument("a reasoning marker is longer than " +
                              std::to_string(kMaxTriggerIds) + " tokens");
    for (int32_t id : *ids) {
      if (id < 0 || id >= vocab.size())
        return invalid_argument("reasoning marker token " + std::to_string(id) +
                                " is outside the vocabulary");
    }
  }
  return Status::ok();
}

Matcher::Matcher(std::shared_ptr<const CompiledGrammar> grammar, StartTrigger start)
    : grammar_(std::move(grammar)), pda_(grammar_->automaton(), pool_), start_(std::move(start)) {
  reset();
}

void Matcher::reset() {
  pool_.clear();
  history_.clear();
  history_.emplace_back();
  pda_.start(history_.back().cfg);
  gate_tokens_.clear();
  update_phase();
}

// The gate's tokens are a prefix of the output: start.open (when set, all of it or a prefix while
// opening), then the reasoning, which ends with start.end once the grammar has started.
void Matcher::update_phase() {
  const std::vector<int32_t>& open = start_.open;
  const std::vector<int32_t>& end = start_.end;
  const size_t n = gate_tokens_.size();
  if (end.empty()) {
    phase_ = Phase::kGrammar;
  } else if (!open.empty() && n < open.size()) {
    // Declined: the first token was the grammar's, not the opening marker's.
    if (n == 0)
      phase_ = history_.size() > 1 ? Phase::kGrammar : Phase::kMayOpen;
    else
      phase_ = Phase::kOpening;
  } else {
    const size_t inside = n - open.size();
    const bool ended =
        inside >= end.size() && std::equal(end.rbegin(), end.rend(), gate_tokens_.rbegin());
    phase_ = ended ? Phase::kGrammar : Phase::kReasoning;
  }
}

bool Matcher::can_terminate() const {
  if (phase_ == Phase::kReasoning) return true;
  if (phase_ == Phase::kOpening) return false;
  const Step& s = history_.back();
  return !s.terminated && s.cfg.popped;
}

bool Matcher::is_terminated() const {
  if (phase_ == Phase::kReasoning || phase_ == Phase::kOpening) return false;
  const Step& s = history_.back();
  return s.terminated || s.cfg.tops.empty();
}

bool Matcher::rollback(size_t n) {
  if (n > num_accepted()) return false;
  // The grammar's tokens follow the gate's: they go first.
  const size_t grammar = std::min(n, history_.size() - 1);
  history_.resize(history_.size() - grammar);
  gate_tokens_.resize(gate_tokens_.size() - (n - grammar));
  update_phase();
  return true;
}

bool Matcher::advance(std::string_view bytes, Config& out) {
  if (scratch_.size() < 2) scratch_.resize(2);
  const Config* cur = &history_.back().cfg;
  for (size_t k = 0; k < bytes.size(); ++k) {
    Config& next = scratch_[k & 1];
    if (!pda_.step(*cur, static_cast<uint8_t>(bytes[k]), next)) return false;
    if (next.tops.empty() && k + 1 < bytes.size()) return false;  // complete, yet bytes remain
    cur = &next;
  }
  out = *cur;
  return true;
}

bool Matcher::accept_token(int32_t id) {
  switch (phase_) {
    case Phase::kGrammar: return accept_grammar_token(id);
    case Phase::kMayOpen:
      if (id == start_.open.front()) break;
      if (!accept_grammar_token(id)) return false;
      update_phase();
      return true;
    case Phase::kOpening:
      if (id != start_.open[gate_tokens_.size()]) return false;
      break;
    case Phase::kReasoning: break;
  }
  gate_tokens_.push_back(id);
  update_phase();
  return true;
}

bool Matcher::accept_grammar_token(int32_t id) {
  if (history_.back().terminated) return false;
  const Vocabulary& v = grammar_->vocab();
  if (v.is_stop(id)) {
    if (!history_.back().cfg.popped) return false;
    Step s;
    s.terminated = true;
    history_.push_back(std::move(s));
    return true;
  }
  const std::string& bytes = v.bytes(id);
  if (bytes.empty()) return false;
  Step s;
  if (!advance(bytes, s.cfg)) return false;
  history_.push_back(std::move(s));
  return true;
}

Status Matcher::accept_tokens(std::span<const int32_t> ids) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!accept_token(ids[i])) {
      return invalid_argument("token " + std::to_string(ids[i]) + " at position " +
                              std::to_string(i) + " does not match the constraint");
    }
  }
  return Status::ok();
}

bool Matcher::accept_bytes(std::string_view bytes) {
  if (phase_ == Phase::kOpening || phase_ == Phase::kReasoning) return false;
  if (history_.back().terminated || bytes.empty()) return false;
  Step s;
  if (!advance(bytes, s.cfg)) return false;
  history_.push_back(std::move(s));
  update_phase();
  return true;
}

namespace {

void set_bit(uint32_t* words, int32_t id) {
  words[id >> 5] |= 1u << (id & 31);
}

void set_all(uint32_t* words, const Vocabulary& v) {
  std::memset(words, 0, v.mask_words() * sizeof(uint32_t));
  for (int32_t id = 0; id < v.size(); ++id) set_bit(words, id);
}

}  // namespace

void Matcher::fill_next_token_bitmask(uint32_t* words) {
  switch (phase_) {
    case Phase::kReasoning: set_all(words, grammar_->vocab()); return;
    case Phase::kOpening:
      std::memset(words, 0, mask_words() * sizeof(uint32_t));
      set_bit(words, start_.open[gate_tokens_.size()]);
      return;
    case Phase::kMayOpen:
      fill_grammar_mask(words);
      set_bit(words, start_.open.front());
      return;
    case Phase::kGrammar: fill_grammar_mask(words); return;
  }
}

void Matcher::fill_grammar_mask(uint32_t* words) {
  const Vocabulary& v = grammar_->vocab();
  const size_t n_words = v.mask_words();
  std::memset(words, 0, n_words * sizeof(uint32_t));
  const Step& step = history_.back();
  const auto set_stops = [&] {
    for (int32_t id : v.stop_ids()) words[id >> 5] |= 1u << (id & 31);
  };
  if (step.terminated) {
    set_stops();
    return;
  }
  const TokenMaskCache& cache = grammar_->mask_cache();
  applied_entries_.clear();
  for (const Top& top : step.cfg.tops) {
    const int32_t id = cache.entry_id(top.state);
    const MaskEntry& e = *cache.entry(top.state);
    if (std::find(applied_entries_.begin(), applied_entries_.end(), id) == applied_entries_.end()) {
      applied_entries_.push_back(id);
      if (!e.accepted_bits.empty()) {
        for (size_t w = 0; w < n_words; ++w) words[w] |= e.accepted_bits[w];
      } else {
        for (int32_t t : e.accepted_ids) words[t >> 5] |= 1u << (t & 31);
      }
    }
    if (!e.uncertain.empty()) check_uncertain(top, e, words);
  }
  if (step.cfg.popped) set_stops();
}

void Matcher::fill_next_token_bitmask_reference(uint32_t* words) {
  const Vocabulary& v = grammar_->vocab();
  if (phase_ == Phase::kReasoning || phase_ == Phase::kOpening) {
    fill_next_token_bitmask(words);  // no grammar involved
    return;
  }
  std::memset(words, 0, v.mask_words() * sizeof(uint32_t));
  const Step& step = history_.back();
  if (!step.terminated) {
    const size_t mark = pool_.size();
    const size_t levels = static_cast<size_t>(v.max_token_bytes()) + 1;
    if (scratch_.size() < levels) scratch_.resize(levels);
    scratch_[0] = step.cfg;
    scratch_[0].popped = false;  // bytes cannot follow the end of the root
    const auto& trie = v.trie();
    const auto& toks = v.trie_tokens();
    for (size_t i = 1; i < trie.size();) {
      const Vocabulary::TrieNode& node = trie[i];
      Config& cur = scratch_[node.depth];
      pda_.step(scratch_[node.depth - 1u], node.byte, cur);
      if (!cur.tops.empty() || cur.popped) {
        for (int32_t k = node.tok_begin; k < node.tok_end; ++k) {
          const int32_t id = toks[static_cast<size_t>(k)];
          words[id >> 5] |= 1u << (id & 31);
        }
      }
      i = cur.tops.empty() ? static_cast<size_t>(node.skip) : i + 1;
    }
    pool_.truncate(mark);
  }
  if (step.terminated || step.cfg.popped) {
    for (int32_t id : v.stop_ids()) words[id >> 5] |= 1u << (id & 31);
  }
  if (phase_ == Phase::kMayOpen) set_bit(words, start_.open.front());
}

// Runs the uncertain tokens of one top against its real stack, reusing the configuration of the
// prefix each token shares with the previous one.
void Matcher::check_uncertain(const Top& top, const MaskEntry& e, uint32_t* words) {
  const Vocabulary& v = grammar_->vocab();
  const size_t mark = pool_.size();
  const size_t levels = static_cast<size_t>(v.max_token_bytes()) + 1;
  if (scratch_.size() < levels) scratch_.resize(levels);
  scratch_[0].clear();
  scratch_[0].tops.push_back(top);
  size_t valid = 0;  // scratch_[0..valid] hold the current prefix's configurations
  for (size_t k = 0; k < e.uncertain.size(); ++k) {
    const int32_t id = e.uncertain[k];
    valid = std::min<size_t>(valid, e.uncertain_lcp[k]);
    if ((words[id >> 5] >> (id & 31)) & 1) continue;  // another top allowed it already
    const std::string& bytes = v.bytes(id);
    size_t d = valid;
    while (d < bytes.size() && !scratch_[d].tops.empty()) {
      pda_.step(scratch_[d], static_cast<uint8_t>(bytes[d]), scratch_[d + 1]);
      ++d;
    }
    valid = d;
    if (d == bytes.size() && (!scratch_[d].tops.empty() || scratch_[d].popped)) {
      words[id >> 5] |= 1u << (id & 31);
    }
  }
  pool_.truncate(mark);
}

int64_t Matcher::min_completion_bytes() const {
  const Step& step = history_.back();
  if (step.terminated || step.cfg.popped) return 0;
  const Automaton& a = grammar_->automaton();
  int64_t best = std::numeric_limits<int64_t>::max();
  for (const Top& t : step.cfg.tops) {
    int64_t total = a.min_completion(t.state);
    for (int32_t p = t.parent; p != kBottom; p = pool_.node(p).parent) {
      total += a.min_completion(pool_.node(p).state);
    }
    best = std::min(best, total);
  }
  return best;
}

std::string Matcher::completion_bytes(size_t max_bytes) const {
  const Step& step = history_.back();
  if (step.terminated || step.cfg.popped || step.cfg.tops.empty()) return {};
  const Automaton& a = grammar_->automaton();
  // The top with the shortest completion, and its callers' return states.
  const Top* best = nullptr;
  int64_t best_total = std::numeric_limits<int64_t>::max();
  for (const Top& t : step.cfg.tops) {
    int64_t total = a.min_completion(t.state);
    for (int32_t p = t.parent; p != kBottom; p = pool_.node(p).parent) {
      total += a.min_completion(pool_.node(p).state);
    }
    if (total < best_total) {
      best_total = total;
      best = &t;
    }
  }
  std::vector<int32_t> frames;  // return states, innermost last
  for (int32_t p = best->parent; p != kBottom; p = pool_.node(p).parent) {
    frames.insert(frames.begin(), pool_.node(p).state);
  }
  std::string out;
  int32_t state = best->state;
  // Each move keeps min_completion(state) + the frames' sum on its minimum; bytes lower it, so
  // only zero-byte moves (returns, calls of nullable rules) need the guard.
  for (size_t guard = 0; out.size() < max_bytes && guard < max_bytes * 4 + 4096; ++guard) {
    const int64_t d = a.min_completion(state);
    if (d == 0 && a.is_final(state)) {
      if (frames.empty()) break;
      state = frames.back();
      frames.pop_back();
      continue;
    }
    bool moved = false;
    for (int32_t c = 0; c < a.num_classes() && !moved; ++c) {
      const int32_t next = a.next_by_class(state, c);
      if (next >= 0 && 1 + a.min_completion(next) == d) {
        out.push_back(static_cast<char>(a.class_byte(c)));
        state = next;
        moved = true;
      }
    }
    for (auto* e = a.rule_edges_begin(state); !moved && e != a.rule_edges_end(state); ++e) {
      if (a.min_completion(a.rule_start(e->rule)) + a.min_completion(e->ret) == d) {
        frames.push_back(e->ret);
        state = a.rule_start(e->rule);
        moved = true;
      }
    }
    if (!moved) break;
  }
  return out;
}

}  // namespace turbine::structured
