// Priority classes (issue 29, engine/scheduler.h SchedulingPolicy) as data: the queue's order,
// the preemption victim, and whole steps planned under each policy. The KV cache is a block
// counter.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "engine/scheduler.h"

// The tables name only the fields a case sets; the others keep their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace turbine::engine {
namespace {

constexpr int kBlock = 4;
constexpr auto kFcfs = SchedulingPolicy::kFcfs;
constexpr auto kPriority = SchedulingPolicy::kPriority;

TEST(SchedulingPolicyName, ParsesVllmsNames) {
  EXPECT_EQ(*parse_scheduling_policy("fcfs"), kFcfs);
  EXPECT_EQ(*parse_scheduling_policy("priority"), kPriority);
  EXPECT_STREQ(scheduling_policy_name(kPriority), "priority");
  EXPECT_STREQ(scheduling_policy_name(kFcfs), "fcfs");
  const auto bad = parse_scheduling_policy("lifo");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.status().field(), "scheduling_policy");
}

struct OrderCase {
  const char* name;
  SchedulingPolicy policy;
  int priority;
  double key;
  int other_priority;
  double other_key;
  bool before;
};

TEST(QueueOrder, Table) {
  const std::vector<OrderCase> cases = {
      {"FcfsIgnoresPriorities", kFcfs, 9, 1.0, 0, 2.0, true},
      {"FcfsLaterKeyAfter", kFcfs, 0, 2.0, 9, 1.0, false},
      {"LowerClassFirstWhateverTheArrival", kPriority, 0, 5.0, 1, 1.0, true},
      {"HigherValueAfter", kPriority, 1, 1.0, 0, 5.0, false},
      {"NegativeBeforeZero", kPriority, -3, 9.0, 0, 0.0, true},
      {"SameClassByKey", kPriority, 2, 1.0, 2, 3.0, true},
      {"SameClassLaterKeyAfter", kPriority, 2, 3.0, 2, 1.0, false},
      {"EqualIsNotBefore", kPriority, 2, 3.0, 2, 3.0, false},
  };
  for (const OrderCase& c : cases) {
    EXPECT_EQ(queue_before(c.policy, c.priority, c.key, c.other_priority, c.other_key), c.before)
        << c.name;
  }
}

struct VictimCase {
  const char* name;
  SchedulingPolicy policy;
  std::vector<SchedSeq> running;  // only priority and arrival matter
  std::vector<bool> alive;
  size_t victim;
};

SchedSeq seq(int priority, double arrival) {
  return {9, 8, 3, priority, arrival};
}

TEST(PreemptionVictim, Table) {
  const std::vector<VictimCase> cases = {
      {"FcfsTheNewestAdmitted", kFcfs, {seq(0, 1), seq(9, 2), seq(0, 3)}, {true, true, true}, 2},
      {"FcfsTheNewestAlive", kFcfs, {seq(0, 1), seq(9, 2), seq(0, 3)}, {true, true, false}, 1},
      {"PriorityTheLargestValue",
       kPriority,
       {seq(0, 1), seq(9, 0), seq(0, 3)},
       {true, true, true},
       1},
      {"PriorityTheLatestArrivalInTheClass",
       kPriority,
       {seq(4, 1), seq(4, 7), seq(4, 3), seq(-1, 9)},
       {true, true, true, true},
       1},
      {"PriorityArrivalNotAdmissionOrder", kPriority, {seq(1, 5), seq(1, 2)}, {true, true}, 0},
      {"PriorityTiesToTheLaterAdmitted", kPriority, {seq(1, 5), seq(1, 5)}, {true, true}, 1},
      {"PrioritySkipsThePreempted",
       kPriority,
       {seq(0, 1), seq(9, 0), seq(3, 3)},
       {true, false, true},
       2},
  };
  for (const VictimCase& c : cases) {
    EXPECT_EQ(preemption_victim(c.policy, c.running, c.alive), c.victim) << c.name;
  }
}

// Counts blocks: running sequences hold theirs, a freed sequence gives them back.
class CountingKv final : public SchedulerKv {
 public:
  CountingKv(int free_blocks, const std::vector<SchedSeq>& running, size_t n_waiting)
      : free_(free_blocks) {
    for (const SchedSeq& s : running) taken_.push_back(s.n_blocks);
    taken_.resize(running.size() + n_waiting, 0);
  }
  bool allocate(size_t seq, int n) override {
    if (n > free_) return false;
    free_ -= n;
    taken_[seq] += n;
    return true;
  }
  void free(size_t seq) override {
    free_ += taken_[seq];
    taken_[seq] = 0;
  }
  Started start(size_t, int) override { return {}; }
  int free_blocks() const { return free_; }

 private:
  int free_;
  std::vector<int> taken_;
};

struct StepCase {
  const char* name;
  SchedulingPolicy policy;
  std::vector<SchedSeq> running;  // {n_tokens, n_computed, n_blocks, priority, arrival}
  std::vector<SchedSeq> waiting;  // in the policy's queue order
  int free_blocks = 100;
  int max_num_seqs = 8;
  std::vector<std::pair<size_t, int>> chunks;
  std::vector<size_t> preempted;
  std::vector<size_t> started;
  int free_after = 0;
};

void PrintTo(const StepCase& c, std::ostream* os) {
  *os << c.name;
}

std::vector<StepCase> step_cases() {
  // A's decode (position 8 of 9) needs a third block; B and C decode within their blocks.
  const SchedSeq a{9, 8, 2, 0, 1.0};
  const SchedSeq b_low{5, 4, 2, 7, 0.5};  // the lowest class, and the oldest arrival
  const SchedSeq c{5, 4, 2, 0, 2.0};
  return {
      {.name = "FcfsPreemptsTheNewest",
       .policy = kFcfs,
       .running = {a, b_low, c},
       .free_blocks = 0,
       .chunks = {{0, 1}, {1, 1}},
       .preempted = {2},
       .free_after = 1},
      {.name = "PriorityPreemptsTheLowestClass",
       .policy = kPriority,
       .running = {a, b_low, c},
       .free_blocks = 0,
       .chunks = {{0, 1}, {2, 1}},
       .preempted = {1},
       .free_after = 1},
      {.name = "PriorityWithinAClassTheLatestArrival",
       .policy = kPriority,
       .running = {a, {5, 4, 2, 0, 3.0}, c},
       .free_blocks = 0,
       .chunks = {{0, 1}, {2, 1}},
       .preempted = {1},
       .free_after = 1},
      // A itself is the lowest class: it goes, and the others still decode in this step.
      {.name = "PriorityTheGrowingSequenceIsTheVictim",
       .policy = kPriority,
       .running = {{9, 8, 2, 5, 1.0}, {5, 4, 2, 0, 0.5}, c},
       .free_blocks = 0,
       .chunks = {{1, 1}, {2, 1}},
       .preempted = {0},
       .free_after = 2},
      // Preempting a sequence whose decode was planned already hands its token back.
      {.name = "PriorityUnplansAnEarlierVictimsDecode",
       .policy = kPriority,
       .running = {{5, 4, 2, 3, 0.5}, a},
       .free_blocks = 0,
       .chunks = {{1, 1}},
       .preempted = {0},
       .free_after = 1},
      // No preemption to make room for a waiting request, whatever its class: it starts when
      // blocks and a slot are free (and first, since the queue is in class order).
      {.name = "AHighClassWaitingRequestPreemptsNothing",
       .policy = kPriority,
       .running = {{5, 4, 2, 9, 0.5}},
       .waiting = {{8, 0, 0, -5, 1.0}},
       .free_blocks = 1,
       .chunks = {{0, 1}},
       .free_after = 1},
      {.name = "TheQueueHeadStartsFirst",
       .policy = kPriority,
       .waiting = {{4, 0, 0, 0, 3.0}, {4, 0, 0, 2, 1.0}},
       .max_num_seqs = 1,
       .chunks = {{0, 4}},
       .started = {0},
       .free_after = 99},
  };
}

class PriorityStep : public ::testing::TestWithParam<StepCase> {};

TEST_P(PriorityStep, PlansTheStep) {
  const StepCase& c = GetParam();
  CountingKv kv(c.free_blocks, c.running, c.waiting.size());
  ScheduleInput in;
  in.running = c.running;
  in.waiting = c.waiting;
  in.token_budget = 100;
  in.max_num_seqs = c.max_num_seqs;
  in.block_size = kBlock;
  in.policy = c.policy;
  const SchedulePlan plan = schedule(in, kv);
  std::vector<std::pair<size_t, int>> chunks;
  for (const ScheduledChunk& ch : plan.chunks) chunks.emplace_back(ch.seq, ch.n_tokens);
  EXPECT_EQ(chunks, c.chunks);
  EXPECT_EQ(plan.preempted, c.preempted);
  EXPECT_EQ(plan.started, c.started);
  EXPECT_EQ(kv.free_blocks(), c.free_after);
}

INSTANTIATE_TEST_SUITE_P(Table, PriorityStep, ::testing::ValuesIn(step_cases()),
                         [](const ::testing::TestParamInfo<StepCase>& i) { return i.param.name; });

}  // namespace
}  // namespace turbine::engine
