// `turbine gen-model`: writes a random-weight Hugging Face model folder (benchmarks without
// downloads).
#pragma once

#include <CLI/CLI.hpp>

namespace turbine::cli {

// Registers the `gen-model` subcommand; its callback exits with 0, or 2 on bad options or I/O
// errors.
void add_gen_model_command(CLI::App& app);

}  // namespace turbine::cli
