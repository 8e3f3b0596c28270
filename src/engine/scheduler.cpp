#include "engine/scheduler.h"

#include <algorithm>

namespace turbine::engine {

namespace {

// Blocks a sequence must add to hold `n_positions` positions.
int blocks_short(int n_positions, int n_blocks, int block_size) {
  return (n_positions + block_size - 1) / block_size - n_blocks;
}

}  // namespace

SchedulePlan schedule(const ScheduleInput& in, SchedulerKv& kv) {
  SchedulePlan plan;
  const int bs = std::max(1, in.block_size);
  int budget = in.token_budget;
  std::vector<int> blocks(in.running.size());
  for (size_t i = 0; i < in.running.size(); ++i) blocks[i] = in.running[i].n_blocks;
  size_t n_running = in.running.size();  // [0, n_running) not preempted
  bool preempted = false;

  // Blocks for n more positions of running sequence i, preempting the newest running sequences
  // while there are too few. False: i itself was the newest and is preempted.
  auto grow_running = [&](size_t i, int n) {
    for (;;) {
      const int extra = blocks_short(in.running[i].n_computed + n, blocks[i], bs);
      if (extra <= 0) return true;
      if (kv.allocate(i, extra)) {
        blocks[i] += extra;
        return true;
      }
      preempted = true;
      const size_t victim = --n_running;
      kv.free(victim);
      blocks[victim] = 0;
      plan.preempted.push_back(victim);
      auto it = std::find_if(plan.chunks.begin(), plan.chunks.end(),
                             [&](const ScheduledChunk& c) { return c.seq == victim; });
      if (it != plan.chunks.end()) {
        budget += it->n_tokens;
        plan.chunks.erase(it);
      }
      if (victim == i) return false;
    }
  };

  // Running sequences: decodes first, then prefill chunks, each pass oldest first.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < n_running && budget > 0; ++i) {
      const SchedSeq& s = in.running[i];
      const int remaining = s.n_tokens - s.n_computed;
      if ((pass == 0) != (remaining == 1)) continue;
      const int n = std::min(remaining, budget);
      if (!grow_running(i, n)) break;  // i was the newest: nothing after it runs either
      plan.chunks.push_back({i, n});
      budget -= n;
    }
  }

  // Waiting sequences, FCFS, unless this step had to preempt.
  int active = static_cast<int>(n_running) + in.n_fetching;
  for (size_t k = 0; k < in.waiting.size() && !preempted && budget > 0 && active < in.max_num_seqs;
       ++k) {
    const size_t seq = in.running.size() + k;
    const SchedSeq& w = in.waiting[k];
    // At least the last token is computed, so its block is never taken from the cache.
    const Started st = kv.start(seq, (w.n_tokens - 1) / bs);
    if (st.kind == Started::Kind::kBlocked) {
      kv.free(seq);
      break;  // no overtaking, as below
    }
    if (st.kind == Started::Kind::kFetch) {
      plan.fetching.push_back(seq);
      ++active;
      continue;
    }
    const int n = std::min(w.n_tokens - st.n_computed, budget);
    const int extra = blocks_short(st.n_computed + n, st.n_blocks, bs);
    if (extra > 0 && !kv.allocate(seq, extra)) {
      kv.free(seq);
      break;  // no overtaking: later sequences wait too
    }
    plan.chunks.push_back({seq, n});
    plan.started.push_back(seq);
    budget -= n;
    ++active;
  }
  return plan;
}

}  // namespace turbine::engine
