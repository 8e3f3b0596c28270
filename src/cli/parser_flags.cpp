#include "cli/parser_flags.h"

namespace turbine::cli {

void ParserFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--tool-call-parser", tool_call_parser,
                 "Tool calls in chat output: auto (from the chat template / model type), hermes, "
                 "llama3_json, mistral, deepseek_v3, json, none")
      ->capture_default_str();
  cmd.add_option("--reasoning-parser", reasoning_parser,
                 "Reasoning in chat output: auto (from the chat template), deepseek_r1, qwen3 "
                 "(<think>), mistral ([THINK]), none")
      ->capture_default_str();
}

Result<frontend::ParserChoice> ParserFlags::choice() const {
  frontend::ParserChoice c;
  auto tools = parsers::parse_tool_call_parser_name(tool_call_parser);
  if (!tools)
    return Status(tools.status().code(), "--tool-call-parser: " + tools.status().message());
  c.tool_format = *tools;
  auto reasoning = parsers::parse_reasoning_parser_name(reasoning_parser);
  if (!reasoning) {
    return Status(reasoning.status().code(), "--reasoning-parser: " + reasoning.status().message());
  }
  c.reasoning_format = *reasoning;
  return c;
}

}  // namespace turbine::cli
