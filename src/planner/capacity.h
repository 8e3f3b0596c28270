// The SLA mode's model of a pool: expected TTFT and ITL of N workers serving a load, from a
// Profile. Facts it rests on:
//  - a prefill worker is a server that takes s(ISL) seconds for a prompt of ISL tokens (the
//    profile's batch-1 TTFT). The router sends each request to the least-loaded worker, so N
//    workers behave as one M/G/N queue (Poisson arrivals, general service): its mean wait is
//    approximated as M/M/N's (Erlang C) times (1 + Cs²)/2 (Lee-Longton; Pollaczek-Khinchine when
//    N = 1); TTFT = E[S] + wait. Prompt lengths are heavy-tailed (Mooncake: mean 12k, up to 126k
//    tokens) and s() is convex, so E[S] and E[S²] come from the distribution of prompt lengths
//    (prefill_moments); s(mean ISL) with Cs² = 0 is the fallback;
//  - a decode worker decoding k sequences of context c steps every itl(k, c) (the profile's
//    decode curve), producing k / itl tokens/s; the steady k is the one whose output rate matches
//    the pool's share of λ·OSL (Little's law);
//  - an aggregated worker (no prefill pool) spends a share f = (λ/N)·E[S] of its time on prompts;
//    decode runs in the rest, and every step that carries a prompt chunk stalls the running
//    streams, so the mean ITL a client sees is itl(k, c) / (1 - f).
// Infeasible loads (ρ or f >= 1, more tokens than the measured curve reaches) give infinite
// latency. Pure; any thread.
#pragma once

#include <utility>
#include <vector>

#include "planner/profile.h"

namespace turbine::planner {

struct Load {
  double rate = 0;  // requests/s
  double isl = 0;   // mean prompt tokens
  double osl = 0;   // mean output tokens
  // E[S] and E[S²] of the prefill time (seconds); <= 0: s(isl), deterministic.
  double s_mean = 0, s2_mean = 0;
};

// E[S] and E[S²] of s(ISL) over a prompt-length histogram ((bucket upper bound, count),
// ascending, as observation.h gives it): each bucket counts at its geometric middle, the
// overflow bucket at 1.5x the last bound. {0, 0} for an empty histogram.
std::pair<double, double> prefill_moments(const Profile& p,
                                          const std::vector<std::pair<double, double>>& buckets);

struct LatencyEstimate {
  double ttft_s = 0;
  double itl_s = 0;
};

// Prefill pool of n workers (disaggregated): TTFT.
double estimate_prefill_ttft(const Profile& p, const Load& load, int n);
// Decode pool of n workers fed by a prefill pool: ITL.
double estimate_decode_itl(const Profile& p, const Load& load, int n);
// n aggregated workers: TTFT and ITL.
LatencyEstimate estimate_aggregated(const Profile& p, const Load& load, int n);

// ITL of one decode worker producing `tokens_per_s` at `context` (infinite beyond the curve).
double itl_at_throughput(const Profile& p, double tokens_per_s, double context);

}  // namespace turbine::planner
