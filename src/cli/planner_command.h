// `turbine planner` (autoscaling, src/planner) and `turbine planner profile`.
#pragma once

#include <CLI/CLI.hpp>

namespace turbine::cli {

void add_planner_command(CLI::App& app);
// `profile` under `turbine planner` (cli/planner_profile.cpp).
void add_planner_profile_command(CLI::App& planner);
// `size` under `turbine planner`: the SLA mode's sizing of one steady load.
void add_planner_size_command(CLI::App& planner);

}  // namespace turbine::cli
