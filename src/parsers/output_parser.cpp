#include "parsers/output_parser.h"

#include <array>

namespace turbine::parsers {

OutputParser::OutputParser(std::unique_ptr<StreamParser> reasoning,
                           std::unique_ptr<StreamParser> tools)
    : reasoning_(std::move(reasoning)), tools_(std::move(tools)) {}

// Reasoning pieces go out in order; content pieces go through the tool stage.
void OutputParser::route(Deltas& staged, Deltas& out) {
  for (api::ChoiceDelta& piece : staged) {
    if (!piece.reasoning.empty()) {
      // Pieces are single-kind: merge with a preceding reasoning piece.
      if (!out.empty() && !out.back().reasoning.empty() && out.back().content.empty() &&
          out.back().tool_calls.empty()) {
        out.back().reasoning += piece.reasoning;
      } else {
        out.push_back(std::move(piece));
      }
    } else if (!piece.content.empty()) {
      if (tools_) {
        tools_->feed(piece.content, out);
      } else {
        writer_.content(piece.content, out);
      }
    }
  }
  staged.clear();
}

void OutputParser::feed(std::string_view text, Deltas& out) {
  if (!reasoning_) {
    if (tools_) {
      tools_->feed(text, out);
    } else {
      writer_.content(text, out);
    }
    return;
  }
  Deltas staged;
  reasoning_->feed(text, staged);
  route(staged, out);
}

void OutputParser::finish(Deltas& out) {
  if (reasoning_) {
    Deltas staged;
    reasoning_->finish(staged);
    route(staged, out);
  }
  if (tools_) tools_->finish(out);
  writer_.flush(out);
}

std::unique_ptr<StreamParser> make_output_parser(const OutputParserConfig& config) {
  std::unique_ptr<StreamParser> tools;
  if (config.forced_function) {
    tools = make_forced_call_parser(*config.forced_function, config.tool_options);
  } else {
    tools = make_tool_call_parser(config.tool_format, config.tool_options);
  }
  std::unique_ptr<StreamParser> reasoning =
      make_reasoning_parser(config.reasoning_format, config.prompt_in_reasoning);
  if (!tools && !reasoning) return nullptr;
  return std::make_unique<OutputParser>(std::move(reasoning), std::move(tools));
}

// ---------------------------------------------------------------------------------------------
// Names and detection

namespace {

struct ToolName {
  std::string_view name;
  ToolCallFormat format;
};
constexpr std::array<ToolName, 13> kToolNames{{
    {"hermes", ToolCallFormat::kHermes},
    {"qwen", ToolCallFormat::kHermes},
    {"qwen2_5", ToolCallFormat::kHermes},
    {"qwen3", ToolCallFormat::kHermes},
    {"llama3_json", ToolCallFormat::kLlama3Json},
    {"llama3", ToolCallFormat::kLlama3Json},
    {"llama", ToolCallFormat::kLlama3Json},
    {"mistral", ToolCallFormat::kMistral},
    {"deepseek_v3", ToolCallFormat::kDeepSeek},
    {"deepseek", ToolCallFormat::kDeepSeek},
    {"deepseek_r1", ToolCallFormat::kDeepSeek},
    {"deepseek_v31", ToolCallFormat::kDeepSeek},
    {"json", ToolCallFormat::kJson},
}};

struct ReasoningName {
  std::string_view name;
  ReasoningFormat format;
};
constexpr std::array<ReasoningName, 4> kReasoningNames{{
    {"deepseek_r1", ReasoningFormat::kThink},
    {"qwen3", ReasoningFormat::kThink},
    {"think", ReasoningFormat::kThink},
    {"mistral", ReasoningFormat::kBracketThink},
}};

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

Result<std::optional<ToolCallFormat>> parse_tool_call_parser_name(std::string_view name) {
  if (name == "auto") return std::optional<ToolCallFormat>();
  if (name == "none") return std::optional<ToolCallFormat>(ToolCallFormat::kNone);
  for (const ToolName& n : kToolNames) {
    if (n.name == name) return std::optional<ToolCallFormat>(n.format);
  }
  return invalid_argument("unknown tool-call parser '" + std::string(name) +
                              "' (known: auto, none, hermes, llama3_json, mistral, deepseek_v3, "
                              "json)",
                          "tool-call-parser");
}

Result<std::optional<ReasoningFormat>> parse_reasoning_parser_name(std::string_view name) {
  if (name == "auto") return std::optional<ReasoningFormat>();
  if (name == "none") return std::optional<ReasoningFormat>(ReasoningFormat::kNone);
  for (const ReasoningName& n : kReasoningNames) {
    if (n.name == name) return std::optional<ReasoningFormat>(n.format);
  }
  return invalid_argument("unknown reasoning parser '" + std::string(name) +
                              "' (known: auto, none, deepseek_r1, qwen3, mistral)",
                          "reasoning-parser");
}

const char* tool_call_format_name(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kNone: return "none";
    case ToolCallFormat::kHermes: return "hermes";
    case ToolCallFormat::kLlama3Json: return "llama3_json";
    case ToolCallFormat::kMistral: return "mistral";
    case ToolCallFormat::kDeepSeek: return "deepseek_v3";
    case ToolCallFormat::kJson: return "json";
  }
  return "none";
}

const char* reasoning_format_name(ReasoningFormat format) {
  switch (format) {
    case ReasoningFormat::kNone: return "none";
    case ReasoningFormat::kThink: return "think";
    case ReasoningFormat::kBracketThink: return "mistral";
  }
  return "none";
}

ToolCallFormat detect_tool_call_format(const ModelHints& hints) {
  const std::string_view t = hints.chat_template;
  if (contains(t, "<tool_call>")) return ToolCallFormat::kHermes;
  if (contains(t, "tool▁calls▁begin") || contains(t, "tool▁call▁begin")) {
    return ToolCallFormat::kDeepSeek;
  }
  if (contains(t, "[TOOL_CALLS]")) return ToolCallFormat::kMistral;
  if (contains(t, "<|python_tag|>") || contains(t, "dictionary of argument name and its value")) {
    return ToolCallFormat::kLlama3Json;
  }
  const std::string_view m = hints.model_type;
  if (m == "qwen2" || m == "qwen2_moe" || m == "qwen3" || m == "qwen3_moe") {
    return ToolCallFormat::kHermes;
  }
  if (m == "mistral" || m == "mixtral" || m == "mistral3") return ToolCallFormat::kMistral;
  if (m == "deepseek_v2" || m == "deepseek_v3") return ToolCallFormat::kDeepSeek;
  return ToolCallFormat::kJson;
}

ReasoningFormat detect_reasoning_format(const ModelHints& hints) {
  if (contains(hints.chat_template, "<think>")) return ReasoningFormat::kThink;
  if (contains(hints.chat_template, "[THINK]")) return ReasoningFormat::kBracketThink;
  return ReasoningFormat::kNone;
}

}  // namespace turbine::parsers
