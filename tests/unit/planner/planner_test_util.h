// Builders the planner tests share.
#pragma once

#include "planner/policy.h"
#include "planner/profile.h"

namespace turbine::planner::testing {

inline PoolState ps(int replicas, int ready) {
  PoolState s;
  s.replicas = replicas;
  s.ready = ready;
  return s;
}

// A worker like the mock's timing model: prompts take 5 ms + 0.03 ms/token; a decode step
// takes 5 ms + 0.02 ms per sequence + 4e-5 ms per context token read.
inline Profile test_profile() {
  Profile p;
  for (double isl : {1000.0, 4000.0, 16000.0}) p.prefill.push_back({isl, 5 + 0.03 * isl});
  for (double ctx : {1000.0, 8000.0}) {
    DecodeCurve c;
    c.context = ctx;
    for (double k : {1.0, 16.0, 64.0, 256.0})
      c.points.push_back({k, 5 + 0.02 * k + 4e-5 * k * ctx});
    p.decode.push_back(c);
  }
  return p;
}

}  // namespace turbine::planner::testing
