// The scheduling policy of engine::Engine as a function of plain data: which running sequences
// advance this step and by how many tokens, which are preempted, which waiting ones start.
//
// One step = one Backend::forward, within `token_budget` tokens:
//  1. Running sequences, oldest first: decode tokens first (sequences with exactly one position
//     left to compute), then prefill chunks (chunked prefill: as many positions as the budget
//     leaves; a preempted sequence recomputes prompt + generated tokens the same way). A chunk's
//     KV blocks are taken before the next chunk is planned; when none are left, the newest running
//     sequence (kPriority: the lowest class's latest arrival) is preempted by recomputation (its
//     blocks freed, its planned tokens handed back; it goes back to the front of the queue) until
//     the chunk fits or the sequence itself was the newest.
//  2. If nothing was preempted, waiting sequences start FCFS (no overtaking: the first that does
//     not fit ends admission) while fewer than `max_num_seqs` hold slots and the budget lasts.
//     A start reuses the sequence's cached prefix (whole blocks, never its last token, so that
//     there are logits to sample from) and may instead begin a KV import (disaggregated serving:
//     the sequence holds a slot and blocks but computes nothing until its KV has arrived).
//
// The token budget is a parameter of each call. A latency target adds a time limit (issue 29):
// with `cost` (a step-time model, engine/step_model.h) and at least one decode planned, prefill
// chunks (running ones, then admissions, in the order above) are cut so that the step's predicted
// time stays within `time_limit_ms`; the chunk of a long prompt is what the time left allows.
// Prefill may always use `min_prefill_ms` of predicted time beside the decodes, and at least one
// position, so that a long prompt is never starved by a large decode batch. A waiting sequence
// whose first chunk does not fit starts in a later step (no overtaking). Steps without decodes
// protect no inter-token latency: they are limited by the token budget alone.
// The KV cache is reached through SchedulerKv: the engine's implementation takes and frees real
// kv::BlockPool blocks at once (the plan is committed as it is made); tests count blocks.
// Single-threaded: the engine thread calls it.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/step_model.h"

namespace turbine::engine {

// How the queue is ordered and who is preempted (`--scheduling-policy`, vLLM's names):
//  kFcfs: arrival order (or the TTFT deadline order, see ttft_queue_key); the newest running
//    sequence is preempted first. SamplingParams::priority must be 0.
//  kPriority: priority classes (SamplingParams::priority, lower value = served earlier, default
//    0): the queue is ordered by (priority, arrival) (with a TTFT target: by priority, then the
//    deadline key within a class); when KV blocks run out, the running sequence with the largest
//    (priority, arrival) is preempted first (vLLM's rule), so a lower class gives up its blocks
//    before a higher one. No aging: under a steady load of higher-priority requests a lower class
//    waits (as in vLLM); the TTFT starvation bound holds within a class only. A waiting
//    high-priority request does not preempt running ones: it is first in line for the next free
//    blocks and slot.
enum class SchedulingPolicy { kFcfs, kPriority };
const char* scheduling_policy_name(SchedulingPolicy policy);  // "fcfs", "priority"
// "fcfs" or "priority"; anything else is kInvalidArgument naming `scheduling_policy`.
Result<SchedulingPolicy> parse_scheduling_policy(std::string_view name);

// A sequence as the policy sees it.
struct SchedSeq {
  int n_tokens = 0;    // prompt + generated tokens so far
  int n_computed = 0;  // positions already in its KV blocks (0 for a waiting sequence)
  int n_blocks = 0;    // KV blocks it holds
  // kPriority only: its class (lower first) and its arrival (any clock; earlier = smaller).
  int priority = 0;
  double arrival = 0;
};

struct ScheduleInput {
  std::span<const SchedSeq> running;  // admission order, oldest first
  std::span<const SchedSeq> waiting;  // the queue's head, FCFS; only these may start this step
  int n_fetching = 0;                 // started sequences waiting for imported KV (hold slots)
  int token_budget = 0;               // positions computed in this step, over all sequences
  int max_num_seqs = 0;               // running + fetching sequences at most
  int block_size = 0;                 // positions per KV block
  // Latency target (see above); null cost: the token budget alone.
  const StepCoefficients* cost = nullptr;
  double time_limit_ms = 0;
  double min_prefill_ms = 0;
  // Who is preempted when blocks run out (see SchedulingPolicy); `waiting` is expected in the
  // policy's queue order (queue_before).
  SchedulingPolicy policy = SchedulingPolicy::kFcfs;
};

// How a waiting sequence starts (SchedulerKv::start).
struct Started {
  enum class Kind {
    kRun,      // it computes from n_computed (its cached prefix)
    kFetch,    // it took its blocks and a KV import began: a slot, no tokens this step
    kBlocked,  // not enough blocks to import into: admission stops here
  };
  Kind kind = Kind::kRun;
  int n_computed = 0;  // positions reused from the prefix cache
  int n_blocks = 0;    // blocks it holds now
};

// Sequences are numbered running first ([0, running.size())), then waiting.
class SchedulerKv {
 public:
  virtual ~SchedulerKv() = default;
  // Takes `n` more free blocks for sequence `seq`; false (nothing taken) when fewer are free.
  virtual bool allocate(size_t seq, int n) = 0;
  // Frees every block `seq` holds: a running sequence being preempted, or a waiting one that
  // could not start after all.
  virtual void free(size_t seq) = 0;
  // Waiting sequence `seq` is next in line: takes its cached prefix (at most `max_cached_blocks`
  // whole blocks) and, when it asks for a KV import, its blocks for it and begins the fetch.
  virtual Started start(size_t seq, int max_cached_blocks) = 0;
};

struct ScheduledChunk {
  size_t seq = 0;    // numbered as in SchedulerKv
  int n_tokens = 0;  // positions [n_computed, n_computed + n_tokens) of the sequence
};

struct SchedulePlan {
  // Running decodes, running prefill chunks (each oldest first), then the sequences that start.
  std::vector<ScheduledChunk> chunks;
  // Running sequences preempted, in the order chosen: under kFcfs newest first (each was the
  // newest left), so that pushing each to the queue's front leaves the oldest first; under
  // kPriority each had the largest (priority, arrival) left (the queue is re-sorted anyway).
  std::vector<size_t> preempted;
  // Waiting sequences that start running / that began a KV import, each in queue order; together
  // they are the first started.size() + fetching.size() waiting sequences.
  std::vector<size_t> started;
  std::vector<size_t> fetching;
  // With a cost model: the plan's predicted step time (0 without one).
  double predicted_ms = 0;
};

SchedulePlan schedule(const ScheduleInput& input, SchedulerKv& kv);

// The queue order under a TTFT target (earliest deadline first; smaller keys go first): a waiting
// sequence that can still get its first token in time (`waited_ms` + its predicted prefill
// `prefill_ms` <= `target_ms`) has key target - waited, its time left; one that cannot yields to
// them, but its key is kStarvationFactor x target - waited, so it waits at most that long
// behind later arrivals (no starvation). A sequence preempted after its first token (`resumed`)
// goes first. Pure.
inline constexpr double kStarvationFactor = 4.0;
double ttft_queue_key(double waited_ms, double prefill_ms, double target_ms, bool resumed);

// The queue's order: whether a sequence of (priority, key) goes before one of (other_priority,
// other_key). `key` is the arrival time, or ttft_queue_key under a TTFT target. kFcfs ignores
// priorities. A strict weak order, for a stable sort. Pure.
bool queue_before(SchedulingPolicy policy, int priority, double key, int other_priority,
                  double other_key);

// The running sequence preempted next among those with `alive[i]`: under kFcfs the last alive
// (the newest admitted); under kPriority the largest (priority, arrival), the later-admitted on
// ties. `alive` has running.size() entries and at least one true. Pure.
size_t preemption_victim(SchedulingPolicy policy, std::span<const SchedSeq> running,
                         const std::vector<bool>& alive);

}  // namespace turbine::engine
