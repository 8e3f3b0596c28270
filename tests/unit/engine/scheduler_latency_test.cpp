// The scheduling policy under a latency target (issue 29), as data: a step-time model, a running
// decode batch and a queue in; every planned step is checked against the target, and the queue is
// run until it drains so that starvation would show. The KV cache is a block counter.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "engine/scheduler.h"
#include "engine/step_model.h"

namespace turbine::engine {
namespace {

constexpr int kBlock = 16;

struct SimSeq {
  int id = 0;
  int n_tokens = 0;  // prompt + generated so far
  int n_computed = 0;
  int n_blocks = 0;
  int n_generated = 0;
  int max_tokens = 0;  // generated tokens before it finishes
  int first_token_step = -1;
};

// Plans steps with engine::schedule over a counting KV cache and applies them the way the engine
// does: chunks advance, a chunk that reaches the end samples a token, finished sequences free
// their blocks.
class Sim {
 public:
  Sim(ScheduleInput limits, int free_blocks) : limits_(limits), free_(free_blocks) {}

  void add_running(int id, int context, int max_tokens) {
    SimSeq s{id, context + 1, context, (context + 1 + kBlock - 1) / kBlock, 1, max_tokens, 0};
    free_ -= s.n_blocks;
    running_.push_back(s);
  }
  void add_waiting(int id, int prompt, int max_tokens) {
    waiting_.push_back({id, prompt, 0, 0, 0, max_tokens, -1});
  }
  bool idle() const { return running_.empty() && waiting_.empty(); }
  int free_blocks() const { return free_; }
  const std::vector<SimSeq>& finished() const { return finished_; }

  struct Step {
    SchedulePlan plan;
    int decodes = 0;
    int prefill_tokens = 0;
    bool prefill_pending = false;  // some sequence had prompt positions left before the step
  };

  Step step(int index) {
    std::vector<SchedSeq> states;
    Step out;
    for (const SimSeq& s : running_) {
      states.push_back({s.n_tokens, s.n_computed, s.n_blocks});
      out.prefill_pending = out.prefill_pending || s.n_tokens - s.n_computed > 1;
    }
    for (const SimSeq& s : waiting_) states.push_back({s.n_tokens, 0, 0});
    out.prefill_pending = out.prefill_pending || !waiting_.empty();
    struct Kv final : SchedulerKv {
      std::vector<SchedSeq>& st;
      int& n_free;
      Kv(std::vector<SchedSeq>& s, int& f) : st(s), n_free(f) {}
      bool allocate(size_t seq, int n) override {
        if (n > n_free) return false;
        n_free -= n;
        st[seq].n_blocks += n;
        return true;
      }
      void free(size_t seq) override {
        n_free += st[seq].n_blocks;
        st[seq].n_blocks = 0;
      }
      Started start(size_t seq, int) override { return {Started::Kind::kRun, 0, st[seq].n_blocks}; }
    } kv(states, free_);
    ScheduleInput in = limits_;
    in.running = std::span<const SchedSeq>(states).first(running_.size());
    in.waiting = std::span<const SchedSeq>(states).subspan(running_.size());
    out.plan = schedule(in, kv);
    EXPECT_TRUE(out.plan.preempted.empty());

    std::vector<SimSeq> all = running_;
    all.insert(all.end(), waiting_.begin(), waiting_.end());
    for (size_t i = 0; i < all.size(); ++i) all[i].n_blocks = states[i].n_blocks;
    for (const ScheduledChunk& c : out.plan.chunks) {
      SimSeq& s = all[c.seq];
      const bool decode = c.n_tokens == 1 && s.n_computed + 1 == s.n_tokens;
      (decode ? out.decodes : out.prefill_tokens) += decode ? 1 : c.n_tokens;
      s.n_computed += c.n_tokens;
      if (s.n_computed == s.n_tokens) {
        if (s.first_token_step < 0) s.first_token_step = index;
        ++s.n_generated;
        ++s.n_tokens;
      }
    }
    const size_t n_started = out.plan.started.size();
    std::vector<SimSeq> next;
    for (size_t i = 0; i < running_.size() + n_started; ++i) {
      if (all[i].n_generated >= all[i].max_tokens) {
        free_ += all[i].n_blocks;
        finished_.push_back(all[i]);
      } else {
        next.push_back(all[i]);
      }
    }
    running_ = std::move(next);
    waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<ptrdiff_t>(n_started));
    return out;
  }

 private:
  ScheduleInput limits_;
  int free_;
  std::vector<SimSeq> running_, waiting_;
  std::vector<SimSeq> finished_;
};

ScheduleInput limits(const StepCoefficients* cost, double target_ms, double min_share) {
  ScheduleInput in;
  in.token_budget = 8192;
  in.max_num_seqs = 256;
  in.block_size = kBlock;
  in.cost = cost;
  in.time_limit_ms = target_ms;
  in.min_prefill_ms = min_share * target_ms;
  return in;
}

// 48 sequences decode at 1k context while a 30k-token prompt and 40 prompts of 512 arrive: with a
// 50 ms target every step that decodes is predicted within it, the long prompt is prefilled in
// chunks that follow the budget (not starved by the short ones, nor they by it), and everything
// finishes. The same queue without the target makes steps of ~250 ms.
TEST(SchedulerLatencyTest, StepsStayUnderTheTargetAndTheQueueDrains) {
  const StepCoefficients cost = default_step_prior();
  constexpr double kTarget = 50.0;
  for (bool timed : {true, false}) {
    SCOPED_TRACE(timed ? "with the target" : "token budget only");
    // Without a target the model still predicts each plan (time limit 0: not timed).
    Sim sim(limits(&cost, timed ? kTarget : 0.0, 0.1), 1 << 20);
    for (int i = 0; i < 48; ++i) sim.add_running(i, 1000, 64);
    sim.add_waiting(100, 30000, 16);
    for (int i = 0; i < 40; ++i) sim.add_waiting(200 + i, 512, 16);
    double worst_ms = 0;
    int steps = 0;
    for (; steps < 2000 && !sim.idle(); ++steps) {
      const Sim::Step st = sim.step(steps);
      // The plan's own prediction is the model's prediction for its chunks.
      if (st.decodes > 0) worst_ms = std::max(worst_ms, st.plan.predicted_ms);
      if (timed && st.decodes > 0) {
        EXPECT_LE(st.plan.predicted_ms, kTarget + 1e-9) << steps;
      }
      if (st.prefill_pending) {
        EXPECT_GT(st.prefill_tokens, 0) << "prefill starved at " << steps;
      }
    }
    ASSERT_TRUE(sim.idle()) << "not drained in " << steps << " steps";
    EXPECT_EQ(sim.finished().size(), 48u + 41u);
    EXPECT_EQ(sim.free_blocks(), 1 << 20);
    if (timed) {
      EXPECT_LE(worst_ms, kTarget + 1e-9);
    } else {
      EXPECT_GT(worst_ms, 200.0);  // an 8,192-token prefill step beside the decodes
    }
    // First tokens in queue order (FCFS admissions; the long prompt first).
    std::vector<SimSeq> queued;
    for (const SimSeq& s : sim.finished())
      if (s.id >= 100) queued.push_back(s);
    std::sort(queued.begin(), queued.end(),
              [](const SimSeq& a, const SimSeq& b) { return a.id < b.id; });
    ASSERT_EQ(queued.size(), 41u);
    for (size_t i = 1; i < queued.size(); ++i)
      EXPECT_LE(queued[i - 1].first_token_step, queued[i].first_token_step) << queued[i].id;
  }
}

// Decodes alone exceed the target (200 sequences at 4k context, ~41 ms against 30 ms): prefill
// still gets its minimum share of the target's time each step, so a 2,000-token prompt gets its
// first token within the steps that share allows, and those steps stay within decodes + share.
TEST(SchedulerLatencyTest, AMinimumPrefillShareWhenDecodesFillTheTarget) {
  const StepCoefficients cost = default_step_prior();
  constexpr double kTarget = 30.0, kShare = 0.1;
  Sim sim(limits(&cost, kTarget, kShare), 1 << 20);
  for (int i = 0; i < 200; ++i) sim.add_running(i, 4000, 1000);
  sim.add_waiting(1000, 2000, 1);
  // Tokens the share buys at the prompt's end (its most expensive chunk).
  const int per_step = cost.max_prefill_tokens(1999, kShare * kTarget, 2000);
  ASSERT_GT(per_step, 0);
  const int bound = (2000 + per_step - 1) / per_step;
  int steps = 0;
  for (; steps < 1000 && sim.finished().empty(); ++steps) {
    const Sim::Step st = sim.step(steps);
    ASSERT_EQ(st.decodes, 200);
    double decode_ms = cost.base_ms;
    for (int i = 0; i < 200; ++i) decode_ms += cost.chunk_ms(4000 + steps, 1, true);
    EXPECT_GT(decode_ms, kTarget);
    EXPECT_LE(st.plan.predicted_ms, decode_ms + kShare * kTarget + 1e-6) << steps;
  }
  ASSERT_EQ(sim.finished().size(), 1u);
  EXPECT_LE(steps, bound);
}

// The TTFT queue order as data: keys sort earliest-deadline first; one that cannot make its
// deadline yields to those that can, up to kStarvationFactor x the target.
TEST(SchedulerLatencyTest, TtftQueueKeys) {
  constexpr double kTarget = 1000;
  const double fresh = ttft_queue_key(0, 100, kTarget, false);
  const double older = ttft_queue_key(500, 100, kTarget, false);
  const double hopeless = ttft_queue_key(950, 100, kTarget, false);  // 950 + 100 > 1000
  const double starving = ttft_queue_key(3100, 100, kTarget, false);
  const double resumed = ttft_queue_key(10, 100, kTarget, true);
  EXPECT_DOUBLE_EQ(fresh, 1000);
  EXPECT_DOUBLE_EQ(older, 500);
  EXPECT_LT(older, fresh);     // earlier deadline first
  EXPECT_GT(hopeless, fresh);  // a lost cause yields to a fresh request...
  EXPECT_DOUBLE_EQ(hopeless, 4000 - 950);
  EXPECT_LT(starving, fresh);  // ...until it has waited 3 targets longer
  EXPECT_EQ(resumed, -std::numeric_limits<double>::infinity());
}

}  // namespace
}  // namespace turbine::engine
