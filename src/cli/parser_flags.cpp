#include "cli/parser_flags.h"

#include <spdlog/spdlog.h>

#include <cctype>

namespace turbine::cli {
namespace {

// config.json's model_type from the architecture as the file names it ("qwen3",
// "Qwen3ForCausalLM", "DeepseekV3ForCausalLM" -> "qwen3", "qwen3", "deepseek_v3").
std::string model_type_hint(std::string_view arch_name) {
  std::string t;
  for (char c : arch_name)
    t.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  constexpr std::string_view kSuffix = "forcausallm";
  if (t.size() > kSuffix.size() && t.ends_with(kSuffix)) t.resize(t.size() - kSuffix.size());
  if (t == "deepseekv3") return "deepseek_v3";
  if (t == "deepseekv2") return "deepseek_v2";
  if (t == "qwen2moe") return "qwen2_moe";
  if (t == "qwen3moe") return "qwen3_moe";
  return t;
}

}  // namespace

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

void attach_parsers(frontend::ServedModel& served, const frontend::ParserChoice& choice,
                    const model::Model& model, const tokenizer::Tokenizer& tokenizer) {
  const std::string type = model_type_hint(model.config().arch_name);
  const frontend::ModelParsers p =
      frontend::resolve_parsers(choice, {model.vocab().chat_template, type}, tokenizer);
  spdlog::info("model {}: tool-call parser {}, reasoning parser {}{}", served.name,
               parsers::tool_call_format_name(p.tool_format),
               parsers::reasoning_format_name(p.reasoning_format),
               p.keep_special.empty()
                   ? ""
                   : " (" + std::to_string(p.keep_special.size()) + " markup tokens kept)");
  served.text_processors = frontend::make_parser_factory(p);
}

}  // namespace turbine::cli
