// `turbine run`: serves a model over the OpenAI API with everything in one process.
#pragma once

#include <CLI/CLI.hpp>

namespace turbine::cli {

// Registers the `run` subcommand; its callback serves until SIGINT/SIGTERM and exits the process
// with 0, or 2 when the model or the server cannot start.
void add_run_command(CLI::App& app);

}  // namespace turbine::cli
