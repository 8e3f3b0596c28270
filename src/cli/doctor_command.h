// `turbine doctor`: a preflight of the host, a model, the runtime's services and a cluster.
#pragma once

#include <CLI/CLI.hpp>

namespace turbine::cli {

// Registers the `doctor` subcommand; its callback prints the report (a table, or JSON with
// --json) and exits the process with 0, or 1 when a check failed.
void add_doctor_command(CLI::App& app);

}  // namespace turbine::cli
