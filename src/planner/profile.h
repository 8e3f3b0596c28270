// A worker's measured performance, per pool: what one prefill worker takes for a prompt (TTFT at
// batch 1, by input length) and how one decode worker's inter-token latency grows with the
// sequences it decodes together (by context length). `turbine planner profile` writes it from a
// `turbine bench` sweep against a deployment with one worker; the SLA policy reads it.
//
// Units are "planner time": wall-clock seconds, or simulated seconds of a mock fleet when the
// profile was taken with --time-scale (the planner then runs with the same scale).
//
// JSON: {"version": 1, "time_scale": S, "source": "...",
//        "prefill": [{"isl": N, "ttft_ms": X}, ...],                  isl ascending
//        "decode": [{"context": C, "points": [{"concurrency": K, "itl_ms": X}, ...]}, ...]}
//                                                                      context, K ascending
// Pure; immutable after load, any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turbine::planner {

struct PrefillPoint {
  double isl = 0;      // prompt tokens
  double ttft_ms = 0;  // batch-1 time to first token
};

struct DecodePoint {
  double concurrency = 0;  // sequences decoding together
  double itl_ms = 0;       // steady inter-token latency (median gap)
};

struct DecodeCurve {
  double context = 0;  // tokens of context per sequence
  std::vector<DecodePoint> points;
};

struct Profile {
  static constexpr int kVersion = 1;
  double time_scale = 1.0;
  std::string source;
  std::vector<PrefillPoint> prefill;
  std::vector<DecodeCurve> decode;

  Status validate() const;

  // Seconds one worker spends on a lone prompt of `isl` tokens: piecewise linear between the
  // measured lengths, the first value below them, the last segment's slope beyond.
  double prefill_seconds(double isl) const;
  // Inter-token latency (seconds) of one worker decoding `concurrency` sequences of `context`
  // tokens each: linear in concurrency, then in context, extrapolated with the edge slopes.
  double decode_itl_seconds(double concurrency, double context) const;
  // The most sequences one worker decodes at `context` with ITL <= itl_s, within the measured
  // concurrency range (0 when even one sequence is slower than itl_s).
  double max_decode_concurrency(double itl_s, double context) const;
  // Output tokens/s of one worker at that concurrency (k / itl).
  double decode_tokens_per_s(double itl_s, double context) const;
};

Result<Profile> profile_from_json(std::string_view json);
std::string to_json(const Profile& profile);
Result<Profile> load_profile(const std::string& path);

}  // namespace turbine::planner
