// Raw model outputs per family with the content, reasoning and tool calls they must give.
// Written from each family's documented output format and chat template (see
// src/parsers/tool_parsers.h and reasoning_parser.h).
#pragma once

#include <string>
#include <vector>

#include "parsers/output_parser.h"

namespace turbine::parsers::testing {

struct ExpectedCall {
  std::string name;
  std::string arguments;
};

struct Fixture {
  std::string name = {};
  ToolCallFormat tools = ToolCallFormat::kNone;
  ReasoningFormat reasoning = ReasoningFormat::kNone;
  bool prompt_in_reasoning = false;
  std::string text = {};  // the model's raw output
  std::string content = {};
  std::string reasoning_text = {};
  std::vector<ExpectedCall> calls = {};
  std::vector<std::string> tool_names = {};  // the request's tools (empty: any name)
};

const std::vector<Fixture>& fixtures();

}  // namespace turbine::parsers::testing
