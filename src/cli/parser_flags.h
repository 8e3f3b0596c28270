// `--tool-call-parser` and `--reasoning-parser` for `turbine run` and `turbine frontend`: which
// output parsers chat responses go through (frontend/output_parsers.h). "auto" (the default)
// detects them per model from its chat template and model type, including the models a
// frontend learns from discovery (read from the card's tokenizer location).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "common/status.h"
#include "frontend/frontend.h"
#include "frontend/output_parsers.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace turbine::cli {

struct ParserFlags {
  std::string tool_call_parser = "auto";
  std::string reasoning_parser = "auto";

  void add_to(CLI::App& cmd);
  // The names as a choice; an unknown name is kInvalidArgument listing the names.
  Result<frontend::ParserChoice> choice() const;
};

// Sets `served`'s text processors (and so the markup tokens they keep) for `model` under `choice`
// (logged).
void attach_parsers(frontend::ServedModel& served, const frontend::ParserChoice& choice,
                    const model::Model& model, const tokenizer::Tokenizer& tokenizer);

}  // namespace turbine::cli
