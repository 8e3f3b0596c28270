#include "frontend/preprocessor.h"

#include <algorithm>
#include <random>

#include <nlohmann/json.hpp>

#include "tokenizer/utf8.h"

namespace turbine::frontend {

uint64_t new_prompt_group() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t g = 0;
  while (g == 0) g = rng();
  return g;
}

Status Preprocessor::check_text_bound(size_t text_bytes, const ModelEntry& model, bool chat,
                                      std::string_view prompt_field) {
  const size_t per_token = std::max<size_t>(1, model.max_token_bytes) * kNormalizationSlack;
  const size_t at_least = text_bytes / per_token;
  if (static_cast<int64_t>(at_least) < model.max_context) return Status::ok();
  return invalid_argument(
      "This model's maximum context length is " + std::to_string(model.max_context) +
          " tokens. However, your " + (chat ? "messages resulted in" : "prompt has") +
          " at least " + std::to_string(at_least) + " tokens (" + std::to_string(text_bytes) +
          " bytes of text). Please reduce the length of the " + (chat ? "messages." : "prompt."),
      std::string(prompt_field));
}

Result<structured::ConstraintSpec> Preprocessor::check_constraint(const api::OutputConstraint& c,
                                                                  const ModelEntry& model) {
  using K = structured::ConstraintSpec::Kind;
  structured::ConstraintSpec spec;
  switch (c.kind) {
    case api::OutputConstraint::Kind::kNone: return spec;
    case api::OutputConstraint::Kind::kJsonSchema: spec.kind = K::kJsonSchema; break;
    case api::OutputConstraint::Kind::kJsonObject: spec.kind = K::kJsonObject; break;
    case api::OutputConstraint::Kind::kRegex: spec.kind = K::kRegex; break;
    case api::OutputConstraint::Kind::kChoice: spec.kind = K::kChoice; break;
    case api::OutputConstraint::Kind::kGrammar: spec.kind = K::kGrammar; break;
  }
  spec.text = c.text;
  if (!model.grammar_compiler) {
    return invalid_argument("structured outputs are not available for model " + model.name,
                            c.param);
  }
  auto compiled = model.grammar_compiler->compile(spec);
  if (!compiled.has_value()) {
    const Status& st = compiled.status();
    if (st.code() == StatusCode::kInvalidArgument)
      return invalid_argument(c.param + ": " + st.message(), c.param);
    return Status(st.code(), st.message(), c.param);
  }
  return spec;
}

Result<PreparedRequest> Preprocessor::prepare(const ParsedRequest& request, const ModelEntry& model,
                                              std::string_view prompt_field) const {
  const api::SamplingOptions& sampling =
      std::visit([](const auto& r) -> const api::SamplingOptions& { return r.sampling; }, request);
  TURBINE_ASSIGN_OR_RETURN(structured::ConstraintSpec spec,
                           check_constraint(sampling.constraint, model));
  Result<PreparedRequest> out =
      std::holds_alternative<api::ChatRequest>(request)
          ? prepare_chat(std::get<api::ChatRequest>(request), model, prompt_field)
          : prepare_completion(std::get<api::CompletionRequest>(request), model, prompt_field);
  if (out.has_value() && spec.active()) {
    for (PreparedChoice& c : out->choices) c.params.constraint = spec;
  }
  // A reasoning model thinks before its constrained output (issue 20): the constraint starts
  // after the reasoning block, unless the prompt closed it.
  if (out.has_value() && out->chat && model.reasoning.active()) {
    const structured::StartTrigger start = constraint_start(out->prompt_text, model.reasoning);
    for (PreparedChoice& c : out->choices) {
      if (c.params.constraint.active()) c.params.constraint.start = start;
    }
  }
  return out;
}

Result<PreparedRequest> Preprocessor::prepare_chat(const api::ChatRequest& r,
                                                   const ModelEntry& model,
                                                   std::string_view prompt_field) const {
  TURBINE_ASSIGN_OR_RETURN(api::ChatTemplateFields fields, with_reasoning_kwargs(r));
  TURBINE_ASSIGN_OR_RETURN(RenderedPrompt rendered,
                           model.chat_prompt.render(r.messages, r.add_generation_prompt, fields));
  TURBINE_RETURN_IF_ERROR(check_text_bound(rendered.text.size(), model, true, prompt_field));
  PreparedRequest out;
  out.chat = true;
  out.sampling = r.sampling;
  out.tools_json = r.template_fields.tools_json;
  const ConstraintPlan plan = plan_constraints(r.extras);
  out.tool_form = plan.tool_form;
  auto ids = std::make_shared<const std::vector<int32_t>>(
      model.tokenizer->encode(rendered.text, rendered.add_special_tokens));
  out.prompt_text = std::move(rendered.text);
  TURBINE_RETURN_IF_ERROR(add_choices(out, 0, std::move(ids), {}, model, prompt_field));
  // A tool constraint's schema is made of the tools' parameter schemas; a JSON output format
  // reaches here from the Responses API's text.format.
  const std::string param = plan.tool_form != ToolOutputForm::kModel ? "tools" : "text.format";
  TURBINE_RETURN_IF_ERROR(frontend::check_constraint(plan, param));
  for (PreparedChoice& c : out.choices) attach_constraint(plan, c.params);
  return out;
}

Result<api::ChatTemplateFields> Preprocessor::with_reasoning_kwargs(const api::ChatRequest& r) {
  api::ChatTemplateFields fields = r.template_fields;
  const api::ChatExtras& x = r.extras;
  if (!x.reasoning_effort && !x.thinking) return fields;
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();
  if (!fields.kwargs_json.empty()) {
    kwargs = nlohmann::ordered_json::parse(fields.kwargs_json, nullptr, /*allow_exceptions=*/false);
    if (!kwargs.is_object()) {
      return invalid_argument("chat_template_kwargs must be an object", "chat_template_kwargs");
    }
  }
  // The request's own kwargs win: they name the template's variables exactly.
  if (x.reasoning_effort && !kwargs.contains("reasoning_effort")) {
    kwargs["reasoning_effort"] = *x.reasoning_effort;
  }
  if (x.thinking && !kwargs.contains("enable_thinking")) kwargs["enable_thinking"] = *x.thinking;
  fields.kwargs_json = kwargs.dump();
  return fields;
}

Result<PreparedRequest> Preprocessor::prepare_completion(const api::CompletionRequest& r,
                                                         const ModelEntry& model,
                                                         std::string_view prompt_field) const {
  PreparedRequest out;
  out.sampling = r.sampling;
  // Bound every text prompt before tokenizing any of them.
  for (const api::PromptInput& p : r.prompts) {
    if (!p.is_tokens) {
      TURBINE_RETURN_IF_ERROR(check_text_bound(p.text.size(), model, false, prompt_field));
    }
  }
  for (size_t i = 0; i < r.prompts.size(); ++i) {
    const api::PromptInput& p = r.prompts[i];
    std::shared_ptr<const std::vector<int32_t>> ids;
    std::string echo;
    if (p.is_tokens) {
      ids = std::make_shared<const std::vector<int32_t>>(p.tokens);
      if (r.sampling.echo) echo = tokenizer::sanitize_utf8(model.tokenizer->decode(p.tokens, true));
    } else {
      ids = std::make_shared<const std::vector<int32_t>>(
          model.tokenizer->encode(p.text, /*add_special=*/true));
      if (r.sampling.echo) echo = p.text;
    }
    TURBINE_RETURN_IF_ERROR(
        add_choices(out, static_cast<int>(i), std::move(ids), echo, model, prompt_field));
  }
  return out;
}

Status Preprocessor::add_choices(PreparedRequest& out, int prompt_index,
                                 std::shared_ptr<const std::vector<int32_t>> prompt,
                                 const std::string& echo, const ModelEntry& model,
                                 std::string_view prompt_field) const {
  TURBINE_ASSIGN_OR_RETURN(
      engine::SamplingParams params,
      engine_params(out.sampling, out.chat, prompt->size(), prompt_field, model.max_context));
  if (!params.logit_bias.empty() &&
      params.logit_bias.back().first >= model.tokenizer->vocab_size()) {
    return invalid_argument("logit_bias names token " +
                                std::to_string(params.logit_bias.back().first) +
                                ", which is outside the vocabulary (" +
                                std::to_string(model.tokenizer->vocab_size()) + " tokens)",
                            "logit_bias");
  }
  const int n = std::max(1, out.sampling.n);
  const int seqs = std::max(n, out.sampling.best_of);
  out.sequences_per_prompt = seqs;
  // best_of ranks the sequences by their cumulative logprob: the engine must report them.
  if (seqs > n) params.n_logprobs = std::max(params.n_logprobs, 0);
  if (seqs > 1) params.prompt_group = new_prompt_group();
  for (int k = 0; k < seqs; ++k) {
    PreparedChoice c;
    c.index = prompt_index * seqs + k;
    c.prompt = prompt;
    c.echo = echo;
    c.params = params;
    if (c.params.seed && k > 0) *c.params.seed += static_cast<uint64_t>(k);
    out.choices.push_back(std::move(c));
  }
  return Status::ok();
}

Result<engine::SamplingParams> Preprocessor::engine_params(const api::SamplingOptions& s, bool chat,
                                                           size_t prompt_len,
                                                           std::string_view prompt_field,
                                                           int64_t max_context) const {
  const auto n = static_cast<int64_t>(prompt_len);
  const std::string field(prompt_field);
  if (n == 0) return invalid_argument("the prompt is empty", field);
  const char* what = chat ? "messages" : "prompt";
  if (n >= max_context) {
    return invalid_argument(
        "This model's maximum context length is " + std::to_string(max_context) +
            " tokens. However, your " + (chat ? "messages resulted in " : "prompt has ") +
            std::to_string(n) + " tokens. Please reduce the length of the " + what + ".",
        field);
  }
  engine::SamplingParams p;
  const int64_t room = max_context - n;
  if (s.max_tokens) {
    if (*s.max_tokens > room) {
      return invalid_argument(
          "This model's maximum context length is " + std::to_string(max_context) +
              " tokens. However, you requested " + std::to_string(n + *s.max_tokens) + " tokens (" +
              std::to_string(n) + " in the " + what + ", " + std::to_string(*s.max_tokens) +
              " in the completion). Please reduce the length of the " + what + " or completion.",
          "max_tokens");
    }
    p.max_tokens = *s.max_tokens;
  } else if (!chat) {
    p.max_tokens =
        static_cast<int>(std::min<int64_t>(options_.default_completion_max_tokens, room));
  } else {
    p.max_tokens = static_cast<int>(room);
  }
  if (s.min_tokens > p.max_tokens) {
    return invalid_argument("min_tokens (" + std::to_string(s.min_tokens) +
                                ") is larger than the tokens left for the completion (" +
                                std::to_string(p.max_tokens) + ")",
                            "min_tokens");
  }
  p.temperature = s.temperature;
  p.top_p = s.top_p;
  p.top_k = s.top_k;
  p.min_p = s.min_p;
  p.seed = s.seed;
  p.presence_penalty = s.presence_penalty;
  p.frequency_penalty = s.frequency_penalty;
  p.repetition_penalty = s.repetition_penalty;
  p.min_tokens = s.min_tokens;
  p.priority = s.priority;
  p.ignore_eos = s.ignore_eos;
  p.stop_token_ids = s.stop_token_ids;
  p.n_logprobs = s.logprobs ? *s.logprobs : -1;
  p.logit_bias = s.logit_bias;
  // Completions with echo and logprobs score the echoed prompt too (OpenAI's legacy behaviour).
  if (!chat && s.echo && s.logprobs) p.prompt_logprobs = *s.logprobs;
  TURBINE_RETURN_IF_ERROR(p.validate());
  return p;
}

}  // namespace turbine::frontend
