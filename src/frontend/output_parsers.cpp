#include "frontend/output_parsers.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <string_view>

namespace turbine::frontend {
namespace {

class ParserProcessor final : public TextProcessor {
 public:
  ParserProcessor(std::unique_ptr<parsers::StreamParser> parser, int max_calls,
                  std::shared_ptr<const std::vector<int32_t>> markup)
      : parser_(std::move(parser)), max_calls_(max_calls), markup_(std::move(markup)) {}

  std::vector<int32_t> markup_tokens() const override {
    return markup_ ? *markup_ : std::vector<int32_t>{};
  }

  void push(std::string_view text, api::ChoiceDelta& out) override {
    parsers::Deltas pieces;
    parser_->feed(text, pieces);
    merge(pieces, out);
  }

  void flush(api::ChoiceDelta& out) override {
    parsers::Deltas pieces;
    parser_->finish(pieces);
    merge(pieces, out);
    // A model that stopped after its calls asks for their results; one cut off (length) or
    // aborted keeps that reason.
    if (calls_ > 0 && out.finish == api::FinishReason::kStop)
      out.finish = api::FinishReason::kToolCalls;
  }

 private:
  void merge(parsers::Deltas& pieces, api::ChoiceDelta& out) {
    for (api::ChoiceDelta& p : pieces) {
      out.content += p.content;
      out.reasoning += p.reasoning;
      for (api::ToolCallDelta& c : p.tool_calls) {
        if (c.index >= max_calls_) continue;
        if (!c.id.empty()) calls_ = std::max(calls_, c.index + 1);
        out.tool_calls.push_back(std::move(c));
      }
    }
  }

  std::unique_ptr<parsers::StreamParser> parser_;
  const int max_calls_;
  const std::shared_ptr<const std::vector<int32_t>> markup_;
  int calls_ = 0;  // calls announced and kept
};

std::vector<std::string_view> markup_of(parsers::ToolCallFormat f) {
  switch (f) {
    case parsers::ToolCallFormat::kHermes: return {"<tool_call>", "</tool_call>"};
    case parsers::ToolCallFormat::kLlama3Json: return {"<|python_tag|>"};
    case parsers::ToolCallFormat::kMistral: return {"[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"};
    case parsers::ToolCallFormat::kDeepSeek:
      return {"<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>",
              "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"};
    case parsers::ToolCallFormat::kJson:
    case parsers::ToolCallFormat::kNone: break;
  }
  return {};
}

std::vector<std::string_view> markup_of(parsers::ReasoningFormat f) {
  switch (f) {
    case parsers::ReasoningFormat::kThink: return {"<think>", "</think>"};
    case parsers::ReasoningFormat::kBracketThink: return {"[THINK]", "[/THINK]"};
    case parsers::ReasoningFormat::kNone: break;
  }
  return {};
}

}  // namespace

std::vector<int32_t> markup_token_ids(parsers::ToolCallFormat tool_format,
                                      parsers::ReasoningFormat reasoning_format,
                                      const tokenizer::Tokenizer& tokenizer) {
  std::vector<std::string_view> markup = markup_of(tool_format);
  for (std::string_view m : markup_of(reasoning_format)) markup.push_back(m);
  std::vector<int32_t> ids;
  if (markup.empty()) return ids;
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    if (!tokenizer.is_special(id)) continue;  // ordinary tokens are in the text anyway
    const std::string piece = tokenizer.piece(id);
    if (std::find(markup.begin(), markup.end(), piece) != markup.end()) ids.push_back(id);
  }
  return ids;  // ascending
}

ReasoningMarkup reasoning_markup(parsers::ReasoningFormat format,
                                 const tokenizer::Tokenizer& tokenizer) {
  ReasoningMarkup m;
  m.format = format;
  const std::vector<std::string_view> tags = markup_of(format);
  if (tags.size() != 2) return m;
  std::vector<int32_t>* out[2] = {&m.open, &m.close};
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    const std::string piece = tokenizer.piece(id);
    for (size_t k = 0; k < 2; ++k) {
      if (out[k]->empty() && piece == tags[k]) out[k]->push_back(id);
    }
  }
  for (size_t k = 0; k < 2; ++k) {
    if (out[k]->empty()) *out[k] = tokenizer.encode(tags[k], /*add_special=*/false);
    if (out[k]->size() > structured::kMaxTriggerIds) out[k]->clear();  // not a usable marker
  }
  return m;
}

structured::StartTrigger constraint_start(std::string_view prompt_text,
                                          const ReasoningMarkup& markup) {
  if (!markup.active()) return {};
  if (parsers::prompt_in_reasoning(prompt_text, markup.format)) return {.end = markup.close};
  const std::vector<std::string_view> tags = markup_of(markup.format);
  std::string_view rest = prompt_text;
  while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.back())))
    rest.remove_suffix(1);
  if (rest.ends_with(tags[1])) return {};
  return {.end = markup.close, .open = markup.open};
}

ModelParsers resolve_parsers(const ParserChoice& choice, const parsers::ModelHints& hints,
                             const tokenizer::Tokenizer& tokenizer) {
  ModelParsers p;
  p.tool_format =
      choice.tool_format ? *choice.tool_format : parsers::detect_tool_call_format(hints);
  p.reasoning_format =
      choice.reasoning_format ? *choice.reasoning_format : parsers::detect_reasoning_format(hints);
  p.keep_special = markup_token_ids(p.tool_format, p.reasoning_format, tokenizer);
  return p;
}

std::unique_ptr<TextProcessor> make_parser_processor(
    std::unique_ptr<parsers::StreamParser> parser, int max_calls,
    std::shared_ptr<const std::vector<int32_t>> markup) {
  return std::make_unique<ParserProcessor>(std::move(parser), max_calls, std::move(markup));
}

TextProcessorFactory make_parser_factory(ModelParsers model) {
  auto markup = std::make_shared<const std::vector<int32_t>>(model.keep_special);
  return [model = std::move(model), markup](const TextProcessorContext& ctx) {
    std::vector<std::unique_ptr<TextProcessor>> out;
    if (!ctx.chat) return out;
    parsers::OutputParserConfig cfg;
    cfg.reasoning_format = model.reasoning_format;
    cfg.prompt_in_reasoning = parsers::prompt_in_reasoning(ctx.prompt_text, model.reasoning_format);
    int max_calls = 1 << 20;
    if (ctx.extras != nullptr && !ctx.extras->tools.empty()) {
      const api::ChatExtras& x = *ctx.extras;
      if (!x.parallel_tool_calls) max_calls = 1;
      switch (ctx.tool_form) {
        case ToolOutputForm::kJsonArray: cfg.tool_format = parsers::ToolCallFormat::kJson; break;
        case ToolOutputForm::kArguments: cfg.forced_function = x.tool_choice.function; break;
        case ToolOutputForm::kModel:
          if (x.tool_choice.mode != api::ToolChoice::Mode::kNone)
            cfg.tool_format = model.tool_format;
          break;
      }
      for (const api::ToolSpec& t : x.tools) cfg.tool_options.tool_names.push_back(t.name);
    }
    std::unique_ptr<parsers::StreamParser> parser = parsers::make_output_parser(cfg);
    if (parser) out.push_back(make_parser_processor(std::move(parser), max_calls, markup));
    return out;
  };
}

namespace {

// config.json's model_type from the architecture as the model files name it ("qwen3",
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

TextProcessorFactory parsers_for_model(const ParserChoice& choice, const std::string& name,
                                       const model::ModelInfo& info,
                                       const tokenizer::Tokenizer& tokenizer,
                                       ModelParsers* resolved) {
  const ModelParsers p = resolve_parsers(
      choice, {info.vocab.chat_template, model_type_hint(info.arch_name)}, tokenizer);
  spdlog::info("model {}: tool-call parser {}, reasoning parser {}{}", name,
               parsers::tool_call_format_name(p.tool_format),
               parsers::reasoning_format_name(p.reasoning_format),
               p.keep_special.empty()
                   ? ""
                   : " (" + std::to_string(p.keep_special.size()) + " markup tokens kept)");
  if (resolved != nullptr) *resolved = p;
  return make_parser_factory(p);
}

}  // namespace turbine::frontend
