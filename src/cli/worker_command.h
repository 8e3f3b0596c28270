// `turbine worker`: one engine served on the TCP request plane and registered in discovery.
#pragma once

#include <CLI/CLI.hpp>

namespace turbine::cli {

void add_worker_command(CLI::App& app);

}  // namespace turbine::cli
