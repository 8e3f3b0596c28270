// `turbine planner` (autoscaling, src/planner) and `turbine planner profile`.
#pragma once

#include <CLI/CLI.hpp>

namespace turbine::cli {

void add_planner_command(CLI::App& app);
// `profile` under `turbine planner` (cli/planner_profile.cpp).
void add_planner_profile_command(CLI::App& planner);

}  // namespace turbine::cli
