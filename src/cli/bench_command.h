// `turbine bench`: the load generator (src/bench) as a subcommand of the single binary.
#pragma once

#include <CLI/CLI.hpp>

namespace turbine::cli {

// Registers the `bench` subcommand. Its callback runs the benchmark and exits the process with
// the benchmark's exit code (0 ok, 1 failed or unreachable, 2 bad arguments, 130 interrupted).
void add_bench_command(CLI::App& app);

}  // namespace turbine::cli
