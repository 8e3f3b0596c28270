// `turbine bench` end to end: validate, load the workload, check the server, run every load point,
// print the report and write the requested files. Runs on the calling thread.
#pragma once

#include <cstdio>

#include "bench/options.h"
#include "bench/report.h"

namespace turbine::bench {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // server unreachable, every request failed, I/O error
inline constexpr int kExitBadArgs = 2;
inline constexpr int kExitInterrupted = 130;  // SIGINT; the partial report was still written
inline constexpr int kDefaultNumRequests = 200;

// Runs the benchmark; the report goes to `out`, errors and progress to stderr.
// `report` (optional) receives the full report (tests).
int run_bench(const BenchOptions& options, std::FILE* out, BenchReport* report = nullptr);

}  // namespace turbine::bench
