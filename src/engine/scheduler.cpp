#include "engine/scheduler.h"

#include <algorithm>
#include <limits>
#include <string>

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
  std::vector<bool> alive(in.running.size(), true);  // not preempted
  size_t n_running = in.running.size();              // how many are alive
  bool preempted = false;
  std::vector<int> start_pos(in.running.size() + in.waiting.size(), 0);  // of planned chunks

  // Blocks for n more positions of running sequence i, preempting running sequences (the
  // policy's victim first) while there are too few. False: i itself was the victim.
  auto grow_running = [&](size_t i, int n) {
    for (;;) {
      const int extra = blocks_short(in.running[i].n_computed + n, blocks[i], bs);
      if (extra <= 0) return true;
      if (kv.allocate(i, extra)) {
        blocks[i] += extra;
        return true;
      }
      preempted = true;
      const size_t victim = preemption_victim(in.policy, in.running, alive);
      alive[victim] = false;
      --n_running;
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

  // Time left for prefill under the latency target; +inf without one. Fixed when the prefill
  // pass begins (decodes are planned by then): `timed` says whether it binds.
  const StepCoefficients* cost = in.cost;
  bool timed = false;
  double allowance = 0;
  int prefill_planned = 0;
  auto begin_prefill = [&] {
    if (cost == nullptr || plan.chunks.empty() || !(in.time_limit_ms > 0)) return;
    double decode_ms = cost->base_ms;
    for (const ScheduledChunk& c : plan.chunks)
      decode_ms += cost->chunk_ms(in.running[c.seq].n_computed, c.n_tokens, true);
    timed = true;
    allowance = std::max(in.time_limit_ms - decode_ms, in.min_prefill_ms);
  };
  // Positions of a prefill chunk from `pos` (at most `n`) that fit the time left; 0: none.
  auto fit = [&](int pos, int n) {
    if (!timed) return n;
    const int k = cost->max_prefill_tokens(pos, allowance, n);
    return k == 0 && prefill_planned == 0 ? std::min(n, 1) : k;
  };
  auto spend = [&](int pos, int n) {
    prefill_planned += n;
    if (timed) allowance -= cost->chunk_ms(pos, n, false);
  };

  // Running sequences: decodes first, then prefill chunks, each pass oldest first.
  bool out_of_time = false;
  for (int pass = 0; pass < 2 && !out_of_time; ++pass) {
    if (pass == 1) begin_prefill();
    for (size_t i = 0; i < in.running.size() && budget > 0; ++i) {
      if (!alive[i]) continue;
      const SchedSeq& s = in.running[i];
      const int remaining = s.n_tokens - s.n_computed;
      if ((pass == 0) != (remaining == 1)) continue;
      const int n = pass == 0 ? 1 : fit(s.n_computed, std::min(remaining, budget));
      if (n == 0) {
        out_of_time = true;  // later chunks wait too, as admissions do
        break;
      }
      // i was the victim: under kFcfs it was the newest, so nothing after it is alive; under
      // kPriority the others may still fit in what it freed.
      if (!grow_running(i, n)) continue;
      plan.chunks.push_back({i, n});
      start_pos[i] = s.n_computed;
      budget -= n;
      if (pass == 1) spend(s.n_computed, n);
    }
  }

  // Waiting sequences, FCFS, unless this step had to preempt or ran out of time.
  int active = static_cast<int>(n_running) + in.n_fetching;
  for (size_t k = 0; k < in.waiting.size() && !preempted && !out_of_time && budget > 0 &&
                     active < in.max_num_seqs;
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
    const int n = fit(st.n_computed, std::min(w.n_tokens - st.n_computed, budget));
    if (n == 0) {
      kv.free(seq);
      break;  // its first chunk does not fit this step's time: it starts first in a later one
    }
    const int extra = blocks_short(st.n_computed + n, st.n_blocks, bs);
    if (extra > 0 && !kv.allocate(seq, extra)) {
      kv.free(seq);
      break;  // no overtaking: later sequences wait too
    }
    plan.chunks.push_back({seq, n});
    start_pos[seq] = st.n_computed;
    plan.started.push_back(seq);
    budget -= n;
    spend(st.n_computed, n);
    ++active;
  }
  if (cost != nullptr && !plan.chunks.empty()) {
    StepShape shape;
    for (const ScheduledChunk& c : plan.chunks) {
      const int pos = start_pos[c.seq];
      const int n_tokens = c.seq < in.running.size()
                               ? in.running[c.seq].n_tokens
                               : in.waiting[c.seq - in.running.size()].n_tokens;
      shape.add_chunk(pos, c.n_tokens, c.n_tokens == 1 && pos + 1 == n_tokens);
    }
    plan.predicted_ms = cost->predict_ms(shape);
  }
  return plan;
}

const char* scheduling_policy_name(SchedulingPolicy policy) {
  return policy == SchedulingPolicy::kPriority ? "priority" : "fcfs";
}

Result<SchedulingPolicy> parse_scheduling_policy(std::string_view name) {
  if (name == "fcfs") return SchedulingPolicy::kFcfs;
  if (name == "priority") return SchedulingPolicy::kPriority;
  return invalid_argument(
      "scheduling policy must be fcfs or priority, got \"" + std::string(name) + "\"",
      "scheduling_policy");
}

bool queue_before(SchedulingPolicy policy, int priority, double key, int other_priority,
                  double other_key) {
  if (policy == SchedulingPolicy::kPriority && priority != other_priority)
    return priority < other_priority;
  return key < other_key;
}

size_t preemption_victim(SchedulingPolicy policy, std::span<const SchedSeq> running,
                         const std::vector<bool>& alive) {
  size_t victim = running.size();
  for (size_t i = running.size(); i-- > 0;) {
    if (!alive[i]) continue;
    if (policy == SchedulingPolicy::kFcfs) return i;
    // Later-admitted wins ties: scanning from the back, only a strictly larger key replaces it.
    if (victim == running.size() || running[i].priority > running[victim].priority ||
        (running[i].priority == running[victim].priority &&
         running[i].arrival > running[victim].arrival))
      victim = i;
  }
  return victim;
}

double ttft_queue_key(double waited_ms, double prefill_ms, double target_ms, bool resumed) {
  if (resumed) return -std::numeric_limits<double>::infinity();
  const bool can_make_it = waited_ms + prefill_ms <= target_ms;
  return (can_make_it ? target_ms : kStarvationFactor * target_ms) - waited_ms;
}

}  // namespace turbine::engine
