#include "structured/pda.h"

#include <algorithm>

namespace turbine::structured {

int32_t StackPool::push(int32_t ret, int32_t parent) {
  const auto [it, inserted] = index_.emplace(key(ret, parent), static_cast<int32_t>(nodes_.size()));
  if (inserted) nodes_.push_back(Top{ret, parent});
  return it->second;
}

void StackPool::truncate(size_t mark) {
  while (nodes_.size() > mark) {
    index_.erase(key(nodes_.back().state, nodes_.back().parent));
    nodes_.pop_back();
  }
}

void StackPool::clear() {
  nodes_.clear();
  index_.clear();
}

bool Pda::seen(const Top& t) {
  // Closures are small (a few tops); a grammar with hundreds of alternatives that are rules gets
  // a hash set instead of the linear scan.
  if (seen_.size() < 64) {
    if (std::find(seen_.begin(), seen_.end(), t) != seen_.end()) return true;
    seen_.push_back(t);
    if (seen_.size() == 64) {
      seen_set_.clear();
      for (const Top& s : seen_) seen_set_.insert(key(s));
    }
    return false;
  }
  return !seen_set_.insert(key(t)).second;
}

void Pda::close(Top seed, Config& out) {
  work_.clear();
  seen_.clear();
  work_.push_back(seed);
  while (!work_.empty()) {
    const Top t = work_.back();
    work_.pop_back();
    if (seen(t)) continue;
    const uint8_t f = a_.flags(t.state);
    if (f & Automaton::kHasBytes) out.tops.push_back(t);
    if (f & Automaton::kHasRules) {
      for (auto* e = a_.rule_edges_begin(t.state); e != a_.rule_edges_end(t.state); ++e) {
        const int32_t parent = pool_.push(e->ret, t.parent);
        work_.push_back(Top{a_.rule_start(e->rule), parent});
      }
    }
    if (f & Automaton::kFinal) {
      if (t.parent < 0) {
        out.popped = true;
        if (t.parent != kBottom &&
            std::find(out.bottoms.begin(), out.bottoms.end(), t.parent) == out.bottoms.end()) {
          out.bottoms.push_back(t.parent);
        }
      } else {
        work_.push_back(pool_.node(t.parent));
      }
    }
  }
}

bool Pda::step(const Config& in, uint8_t byte, Config& out) {
  out.clear();
  for (const Top& t : in.tops) {
    const int32_t next = a_.next(t.state, byte);
    if (next < 0) continue;
    if (a_.is_simple(next)) {
      out.tops.push_back(Top{next, t.parent});
    } else {
      close(Top{next, t.parent}, out);
    }
  }
  if (out.tops.size() > 1) {
    std::sort(out.tops.begin(), out.tops.end());
    out.tops.erase(std::unique(out.tops.begin(), out.tops.end()), out.tops.end());
  }
  return !out.tops.empty() || out.popped;
}

void Pda::start(Config& out) {
  out.clear();
  close(Top{a_.rule_start(a_.root_rule()), kBottom}, out);
  if (out.tops.size() > 1) {
    std::sort(out.tops.begin(), out.tops.end());
    out.tops.erase(std::unique(out.tops.begin(), out.tops.end()), out.tops.end());
  }
}

}  // namespace turbine::structured
