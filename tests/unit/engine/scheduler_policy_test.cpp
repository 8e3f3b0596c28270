// The scheduling policy (engine/scheduler.h) as data, the way vLLM's scheduler tests work: tables
// of running/waiting sequences, a token budget, a slot limit and free KV blocks in; the step's
// chunks, preemptions and admissions out. The KV cache is a block counter.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

// The tables name only the fields a case sets; the others keep their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace turbine::engine {
namespace {

// A waiting sequence: its tokens, whole blocks of it in the prefix cache, and whether it asks for
// a KV import (disaggregated serving) of all but its last token.
struct Waiting {
  int n_tokens = 0;
  int cached_blocks = 0;
  bool import = false;
};

// Counts blocks. Cached blocks are resident already (they do not come from the free count);
// freeing a sequence returns the blocks it took from the free count.
class CountingKv final : public SchedulerKv {
 public:
  CountingKv(int free_blocks, int block_size, std::vector<SchedSeq> running,
             std::vector<Waiting> waiting)
      : free_(free_blocks),
        bs_(block_size),
        n_running_(running.size()),
        waiting_(std::move(waiting)) {
    for (const SchedSeq& s : running) taken_.push_back(s.n_blocks);
    taken_.resize(n_running_ + waiting_.size(), 0);
  }
  bool allocate(size_t seq, int n) override {
    calls_.push_back("allocate " + std::to_string(seq) + " " + std::to_string(n));
    if (n > free_) return false;
    free_ -= n;
    taken_[seq] += n;
    return true;
  }
  void free(size_t seq) override {
    calls_.push_back("free " + std::to_string(seq));
    free_ += taken_[seq];
    taken_[seq] = 0;
  }
  Started start(size_t seq, int max_cached_blocks) override {
    const Waiting& w = waiting_.at(seq - n_running_);
    const int cached = std::min(w.cached_blocks, max_cached_blocks);
    Started st;
    st.n_computed = cached * bs_;
    st.n_blocks = cached;
    if (w.import) {
      const int need = (w.n_tokens - 1 + bs_ - 1) / bs_ - cached;
      if (!allocate(seq, need)) {
        st.kind = Started::Kind::kBlocked;
        return st;
      }
      st.kind = Started::Kind::kFetch;
      st.n_blocks += need;
    }
    return st;
  }
  int free_blocks() const { return free_; }

 private:
  int free_;
  const int bs_;
  const size_t n_running_;
  const std::vector<Waiting> waiting_;
  std::vector<int> taken_;
  std::vector<std::string> calls_;
};

struct Case {
  const char* name;
  std::vector<SchedSeq> running;  // {n_tokens, n_computed, n_blocks}, oldest first
  std::vector<Waiting> waiting;
  int token_budget = 100;
  int max_num_seqs = 8;
  int free_blocks = 100;
  int n_fetching = 0;
  // Expected: chunks {seq, tokens} (running numbered first, then waiting), preempted (newest
  // first), started, fetching, free blocks after the plan.
  std::vector<std::pair<size_t, int>> chunks;
  std::vector<size_t> preempted;
  std::vector<size_t> started;
  std::vector<size_t> fetching;
  int free_after = 0;
  // A latency target (issue 29): the step-time model and the limits; the plan's predicted time.
  const StepCoefficients* cost = nullptr;
  double time_limit_ms = 0;
  double min_prefill_ms = 0;
  double predicted_ms = 0;
};

// gtest prints a case by its name.
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

constexpr int kBlock = 4;

// A step-time model whose numbers are easy to follow: 10 ms per step, 1 ms per sequence, 0.5 ms
// per prefill token, nothing for KV reads or attention.
const StepCoefficients kCost{10.0, 1.0, 0.0, 0.5, 0.0};

std::vector<Case> cases() {
  return {
      {.name = "DecodesFirstThenPrefillChunksEachOldestFirst",
       .running = {{10, 0, 0}, {9, 8, 2}, {5, 4, 1}},
       .chunks = {{1, 1}, {2, 1}, {0, 10}},
       .free_after = 100 - 1 - 1 - 3},
      {.name = "ChunkedPrefillTakesWhatTheBudgetLeaves",
       .running = {{9, 8, 3}, {20, 0, 0}},
       .waiting = {{8}},
       .token_budget = 8,
       .chunks = {{0, 1}, {1, 7}},
       .free_after = 100 - 2},
      {.name = "FcfsAdmissionUpToMaxNumSeqs",
       .waiting = {{5}, {6}, {7}},
       .max_num_seqs = 2,
       .chunks = {{0, 5}, {1, 6}},
       .started = {0, 1},
       .free_after = 100 - 2 - 2},
      {.name = "RunningAndFetchingSequencesHoldSlots",
       .running = {{9, 8, 3}},
       .waiting = {{5}, {6}},
       .max_num_seqs = 2,
       .n_fetching = 1,
       .chunks = {{0, 1}},
       .free_after = 100},
      {.name = "NoOvertakingWhenTheHeadDoesNotFit",
       .waiting = {{40}, {4}},
       .free_blocks = 5,
       .free_after = 5},
      {.name = "PrefixHitsAreReusedButTheLastTokenIsComputed",
       .waiting = {{12, 3}, {9, 1}},
       // 12 tokens, 3 cached blocks: only 2 may be used (token 12 is in the third);
       // 9 tokens, 1 cached block: 5 computed.
       .chunks = {{0, 4}, {1, 5}},
       .started = {0, 1},
       .free_after = 100 - 1 - 2},
      {.name = "TheBudgetLimitsAdmissionsAndChunksTheLastOne",
       .waiting = {{6}, {8}, {3}},
       .token_budget = 10,
       .chunks = {{0, 6}, {1, 4}},
       .started = {0, 1},
       .free_after = 100 - 2 - 1},
      {.name = "ABudgetOfOneRunsTheOldestDecodeOnly",
       .running = {{9, 8, 3}, {5, 4, 2}},
       .waiting = {{3}},
       .token_budget = 1,
       .chunks = {{0, 1}},
       .free_after = 100},
      {.name = "PreemptsTheNewestWhenBlocksRunOutAndAdmitsNothing",
       // A's decode takes the last free block; B's needs one more: C (newest) goes, frees
       // nothing it took, then B itself goes.
       .running = {{9, 8, 2}, {13, 12, 3}, {8, 0, 0}},
       .waiting = {{3}},
       .free_blocks = 1,
       .chunks = {{0, 1}},
       .preempted = {2, 1},
       .free_after = 3},
      {.name = "PreemptionHandsBackAPlannedDecodesBudget",
       // C decodes first (one block), then the older A's prefill needs three: C is preempted,
       // its planned token handed back, and A fits in the blocks C freed.
       .running = {{12, 0, 0}, {5, 4, 1}},
       .token_budget = 13,
       .free_blocks = 2,
       .chunks = {{0, 12}},
       .preempted = {1},
       .free_after = 0},
      {.name = "AKvImportTakesASlotAndNoTokens",
       .waiting = {{21, 0, true}, {4}, {4}},
       .max_num_seqs = 2,
       .chunks = {{1, 4}},
       .started = {1},
       .fetching = {0},
       .free_after = 100 - 5 - 1},
      {.name = "AnImportWithoutBlocksStopsAdmission",
       .waiting = {{21, 0, true}, {4}},
       .free_blocks = 4,
       .free_after = 4},
      // Latency target: 10 + 1 (the decode) = 11 ms planned; 9 ms left for prefill = one chunk
      // of (9 - 1) / 0.5 = 16 tokens of the 20-token prompt.
      {.name = "TheTimeLimitCutsAPrefillChunk",
       .running = {{9, 8, 3}, {20, 0, 0}},
       .chunks = {{0, 1}, {1, 16}},
       .free_after = 100 - 4,
       .cost = &kCost,
       .time_limit_ms = 20,
       .predicted_ms = 20},
      // 9 ms left: the first admission takes 1 + 4 = 5, the second gets (4 - 1) / 0.5 = 6 of its
      // 8 tokens, the third does not start (no overtaking: nothing after it either).
      {.name = "AdmissionsStopWhenTheTimeIsSpent",
       .running = {{9, 8, 3}},
       .waiting = {{8}, {8}, {2}},
       .chunks = {{0, 1}, {1, 8}, {2, 6}},
       .started = {1, 2},
       .free_after = 100 - 2 - 2,
       .cost = &kCost,
       .time_limit_ms = 20,
       .predicted_ms = 20},
      // Three decodes take 13 ms, more than the 12 ms target: prefill still gets its minimum
      // share of 3 ms = (3 - 1) / 0.5 = 4 tokens.
      {.name = "PrefillKeepsItsMinimumShareWhenDecodesFillTheTarget",
       .running = {{9, 8, 3}, {9, 8, 3}, {9, 8, 3}, {40, 0, 0}},
       .chunks = {{0, 1}, {1, 1}, {2, 1}, {3, 4}},
       .free_after = 100 - 1,
       .cost = &kCost,
       .time_limit_ms = 12,
       .min_prefill_ms = 3,
       .predicted_ms = 16},
      // No time at all: one position still moves, so a prompt is never stuck.
      {.name = "AtLeastOnePrefillPositionPerStep",
       .running = {{9, 8, 3}, {40, 0, 0}},
       .waiting = {{4}},
       .chunks = {{0, 1}, {1, 1}},
       .free_after = 100 - 1,
       .cost = &kCost,
       .time_limit_ms = 5,
       .predicted_ms = 12.5},
      // No decode in the step: no inter-token latency to protect, the token budget alone.
      {.name = "AStepWithoutDecodesIsNotTimed",
       .waiting = {{30}, {30}},
       .chunks = {{0, 30}, {1, 30}},
       .started = {0, 1},
       .free_after = 100 - 16,
       .cost = &kCost,
       .time_limit_ms = 5,
       .predicted_ms = 10 + 2 + 30},
      // A running chunk that does not fit ends the prefill pass: admissions wait too.
      {.name = "ARunningChunkOutOfTimeStopsAdmissions",
       .running = {{9, 8, 3}, {20, 0, 0}, {20, 0, 0}},
       .waiting = {{4}},
       .chunks = {{0, 1}, {1, 10}},
       .free_after = 100 - 3,
       .cost = &kCost,
       .time_limit_ms = 17,
       .predicted_ms = 17},
  };
}

class SchedulePolicy : public ::testing::TestWithParam<Case> {};

TEST_P(SchedulePolicy, PlansTheStep) {
  const Case& c = GetParam();
  std::vector<SchedSeq> waiting;
  for (const Waiting& w : c.waiting) waiting.push_back({w.n_tokens, 0, 0});
  CountingKv kv(c.free_blocks, kBlock, c.running, c.waiting);
  ScheduleInput in;
  in.running = c.running;
  in.waiting = waiting;
  in.n_fetching = c.n_fetching;
  in.token_budget = c.token_budget;
  in.max_num_seqs = c.max_num_seqs;
  in.block_size = kBlock;
  in.cost = c.cost;
  in.time_limit_ms = c.time_limit_ms;
  in.min_prefill_ms = c.min_prefill_ms;
  const SchedulePlan plan = schedule(in, kv);
  EXPECT_DOUBLE_EQ(plan.predicted_ms, c.predicted_ms);
  std::vector<std::pair<size_t, int>> chunks;
  for (const ScheduledChunk& ch : plan.chunks) chunks.emplace_back(ch.seq, ch.n_tokens);
  EXPECT_EQ(chunks, c.chunks);
  EXPECT_EQ(plan.preempted, c.preempted);
  EXPECT_EQ(plan.started, c.started);
  EXPECT_EQ(plan.fetching, c.fetching);
  EXPECT_EQ(kv.free_blocks(), c.free_after);
  int tokens = 0;
  for (const ScheduledChunk& ch : plan.chunks) tokens += ch.n_tokens;
  EXPECT_LE(tokens, c.token_budget);
}

INSTANTIATE_TEST_SUITE_P(Table, SchedulePolicy, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

// Steps repeated over a queue until it drains: FCFS order of first tokens, every chunk within
// the budget, the slot limit never exceeded.
TEST(SchedulePolicyRun, DrainsAQueueInOrderWithinLimits) {
  constexpr int kBudget = 16, kSeqs = 3, kBlocks = 64;
  struct Seq {
    int n_tokens, n_computed = 0, n_blocks = 0, id;
  };
  std::vector<Seq> running, waiting;
  for (int i = 0; i < 8; ++i) waiting.push_back({10 + 3 * i, 0, 0, i});
  std::vector<int> first_token_order;
  int free = kBlocks;
  for (int step = 0; step < 200 && (!running.empty() || !waiting.empty()); ++step) {
    std::vector<SchedSeq> states;
    for (const Seq& s : running) states.push_back({s.n_tokens, s.n_computed, s.n_blocks});
    for (const Seq& s : waiting) states.push_back({s.n_tokens, 0, 0});
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
    } kv(states, free);
    ScheduleInput in;
    in.running = std::span<const SchedSeq>(states).first(running.size());
    in.waiting = std::span<const SchedSeq>(states).subspan(running.size());
    in.token_budget = kBudget;
    in.max_num_seqs = kSeqs;
    in.block_size = kBlock;
    const SchedulePlan plan = schedule(in, kv);
    ASSERT_TRUE(plan.preempted.empty());  // 64 blocks hold three of these at once
    int tokens = 0;
    for (const ScheduledChunk& c : plan.chunks) tokens += c.n_tokens;
    EXPECT_LE(tokens, kBudget);
    // Apply: admissions join the running set, chunks advance, finished sequences (one generated
    // token after the prompt) leave.
    std::vector<Seq> all = running;
    all.insert(all.end(), waiting.begin(), waiting.end());
    for (size_t i = 0; i < all.size(); ++i) all[i].n_blocks = states[i].n_blocks;
    for (const ScheduledChunk& c : plan.chunks) {
      Seq& s = all[c.seq];
      s.n_computed += c.n_tokens;
      if (s.n_computed == s.n_tokens) {
        first_token_order.push_back(s.id);
        s.n_tokens = -1;  // done: one token is enough here
      }
    }
    std::vector<Seq> next_running;
    for (size_t i = 0; i < running.size() + plan.started.size(); ++i) {
      if (all[i].n_tokens < 0)
        free += all[i].n_blocks;
      else
        next_running.push_back(all[i]);
    }
    EXPECT_LE(static_cast<int>(next_running.size()), kSeqs);
    waiting.erase(waiting.begin(), waiting.begin() + static_cast<ptrdiff_t>(plan.started.size()));
    running = std::move(next_running);
  }
  EXPECT_EQ(first_token_order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(free, kBlocks);
}

}  // namespace
}  // namespace turbine::engine
