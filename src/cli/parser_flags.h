// `--tool-call-parser` and `--reasoning-parser` for `turbine run` and `turbine frontend`: which
// output parsers chat responses go through (frontend/output_parsers.h). "auto" (the default)
// detects them per model from its chat template and model type, including the models a
// frontend learns from discovery (frontend::parsers_for_model, called by serving::FrontendModels).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "common/status.h"
#include "frontend/output_parsers.h"

namespace turbine::cli {

struct ParserFlags {
  std::string tool_call_parser = "auto";
  std::string reasoning_parser = "auto";

  void add_to(CLI::App& cmd);
  // The names as a choice; an unknown name is kInvalidArgument listing the names.
  Result<frontend::ParserChoice> choice() const;
};

}  // namespace turbine::cli
