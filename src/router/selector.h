// Worker selection: the cost of sending one request to each candidate worker, and the choice.
//
// kv mode (after NVIDIA Dynamo's DefaultWorkerSelector; facts only):
//   prefill_blocks = pending_prefill_tokens / block_size           (work queued on the worker)
//                  + request_blocks - cached_blocks                (this request's new prefill)
//   decode_blocks  = active_decode_blocks + new_decode_blocks
//   cost           = overlap_weight * prefill_blocks + decode_blocks          (lower is better)
// request_blocks is prompt_tokens / block_size (fractional, as Dynamo's isl / block_size).
// active_decode_blocks counts a worker's UNIQUE active blocks (requests sharing a prefix hold its
// blocks once) and new_decode_blocks the request's blocks not already active there, as Dynamo's
// ActiveSequences does; without that information (new_decode_blocks < 0) all request_blocks.
// Temperature 0: the lowest cost; ties go to the worker with the smallest cache (fewest indexed
// blocks), then to a random one. Temperature T > 0: costs are normalised by their range,
// s_i = -(cost_i - min) / (max - min) / T, and a worker is sampled with softmax(s) (uniform when
// all costs are equal).
// Pure functions of their inputs and the RNG; no state.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string_view>

#include "common/status.h"

namespace turbine::router {

enum class RouterMode { kKv, kRoundRobin, kRandom, kLeastLoaded };
const char* router_mode_name(RouterMode mode);  // "kv", "round-robin", "random", "least-loaded"
Result<RouterMode> parse_router_mode(std::string_view name);

struct Candidate {
  uint64_t worker_id = 0;
  double cached_blocks = 0;           // leading request blocks this worker holds
  double pending_prefill_tokens = 0;  // routed here, first token not seen yet
  double active_decode_blocks = 0;    // unique blocks of requests routed here, not finished
  double new_decode_blocks = -1;      // request blocks not active here (< 0: request_blocks)
  size_t tree_blocks = 0;             // blocks the worker has in the index (tie-breaker)
  double cost = 0;                    // filled by kv_costs()
};

// Fills candidates[i].cost.
void kv_costs(std::span<Candidate> candidates, double request_tokens, int block_size,
              double overlap_weight);

// Index of the chosen candidate (candidates non-empty, costs filled).
size_t select_by_cost(std::span<const Candidate> candidates, double temperature,
                      std::mt19937_64& rng);

}  // namespace turbine::router
