// `turbine frontend`: the OpenAI HTTP frontend for the workers it discovers.
#pragma once

#include <CLI/CLI.hpp>

namespace turbine::cli {

void add_frontend_command(CLI::App& app);

}  // namespace turbine::cli
