// The SLA mode's model of a pool: expected TTFT and ITL of N workers serving a load, from a
// Profile. Facts it rests on:
//  - a prefill worker is a queue served in s(ISL) seconds per request (the profile's batch-1
//    TTFT); N workers sharing λ requests/s each see λ/N, and with Poisson arrivals the mean wait
//    of an M/D/1 queue is ρ·s / (2(1-ρ)), ρ = λ·s / N; TTFT = s + wait;
//  - a decode worker decoding k sequences of context c steps every itl(k, c) (the profile's
//    decode curve), producing k / itl tokens/s; the steady k is the one whose output rate matches
//    the pool's share of λ·OSL (Little's law);
//  - an aggregated worker (no prefill pool) spends a share f = (λ/N)·s of its time on prompts;
//    decode runs in the rest, and every step that carries a prompt chunk stalls the running
//    streams, so the mean ITL a client sees is itl(k, c) / (1 - f).
// Infeasible loads (ρ or f >= 1, more tokens than the measured curve reaches) give infinite
// latency. Pure; any thread.
#pragma once

#include "planner/profile.h"

namespace turbine::planner {

struct Load {
  double rate = 0;  // requests/s
  double isl = 0;   // mean prompt tokens
  double osl = 0;   // mean output tokens
};

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
