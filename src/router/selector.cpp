#include "router/selector.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace turbine::router {

const char* router_mode_name(RouterMode mode) {
  switch (mode) {
    case RouterMode::kKv: return "kv";
    case RouterMode::kRoundRobin: return "round-robin";
    case RouterMode::kRandom: return "random";
    case RouterMode::kLeastLoaded: return "least-loaded";
  }
  return "unknown";
}

Result<RouterMode> parse_router_mode(std::string_view name) {
  if (name == "kv") return RouterMode::kKv;
  if (name == "round-robin" || name == "round_robin") return RouterMode::kRoundRobin;
  if (name == "random") return RouterMode::kRandom;
  if (name == "least-loaded" || name == "least_loaded") return RouterMode::kLeastLoaded;
  return invalid_argument(
      "unknown router mode `" + std::string(name) + "` (kv, round-robin, random, least-loaded)",
      "router_mode");
}

void kv_costs(std::span<Candidate> candidates, double request_tokens, int block_size,
              double overlap_weight) {
  const double bs = std::max(1, block_size);
  const double request_blocks = request_tokens / bs;
  for (Candidate& c : candidates) {
    const double new_blocks = std::max(0.0, request_blocks - c.cached_blocks);
    const double prefill_blocks = c.pending_prefill_tokens / bs + new_blocks;
    const double added = c.new_decode_blocks < 0 ? request_blocks : c.new_decode_blocks;
    const double decode_blocks = c.active_decode_blocks + added;
    c.cost = overlap_weight * prefill_blocks + decode_blocks;
  }
}

size_t select_by_cost(std::span<const Candidate> candidates, double temperature,
                      std::mt19937_64& rng) {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -lo;
  for (const Candidate& c : candidates) {
    lo = std::min(lo, c.cost);
    hi = std::max(hi, c.cost);
  }
  if (temperature > 0 && hi > lo) {
    std::vector<double> w(candidates.size());
    // The best candidate has s = 0, so the largest weight is exp(0) = 1: no overflow.
    for (size_t i = 0; i < candidates.size(); ++i)
      w[i] = std::exp(-(candidates[i].cost - lo) / (hi - lo) / temperature);
    std::discrete_distribution<size_t> pick(w.begin(), w.end());
    return pick(rng);
  }
  if (temperature > 0) {
    return std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng);
  }
  // Argmin; ties by the smallest cache, then uniformly at random (reservoir sampling).
  size_t best = 0;
  size_t n_tied = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    if (c.cost != lo) continue;
    if (n_tied > 0 && c.tree_blocks > candidates[best].tree_blocks) continue;
    if (n_tied == 0 || c.tree_blocks < candidates[best].tree_blocks) {
      best = i;
      n_tied = 1;
      continue;
    }
    ++n_tied;
    if (std::uniform_int_distribution<size_t>(0, n_tied - 1)(rng) == 0) best = i;
  }
  return best;
}

}  // namespace turbine::router
