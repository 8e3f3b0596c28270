#include "frontend/preprocessor.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace turbine::frontend {

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

Result<PreparedRequest> Preprocessor::prepare(const ParsedRequest& request, const ModelEntry& model,
                                              std::string_view prompt_field) const {
  if (const auto* chat = std::get_if<api::ChatRequest>(&request)) {
    return prepare_chat(*chat, model, prompt_field);
  }
  return prepare_completion(std::get<api::CompletionRequest>(request), model, prompt_field);
}

Result<PreparedRequest> Preprocessor::prepare_chat(const api::ChatRequest& r,
                                                   const ModelEntry& model,
                                                   std::string_view prompt_field) const {
  TURBINE_ASSIGN_OR_RETURN(
      RenderedPrompt rendered,
      model.chat_prompt.render(r.messages, r.add_generation_prompt, r.template_fields));
  TURBINE_RETURN_IF_ERROR(check_text_bound(rendered.text.size(), model, true, prompt_field));
  PreparedRequest out;
  out.chat = true;
  out.sampling = r.sampling;
  out.tools_json = r.template_fields.tools_json;
  auto ids = std::make_shared<const std::vector<int32_t>>(
      model.tokenizer->encode(rendered.text, rendered.add_special_tokens));
  out.prompt_text = std::move(rendered.text);
  TURBINE_RETURN_IF_ERROR(add_choices(out, 0, std::move(ids), {}, model, prompt_field));
  return out;
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
  const int n = std::max(1, out.sampling.n);
  for (int k = 0; k < n; ++k) {
    PreparedChoice c;
    c.index = prompt_index * n + k;
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
  p.ignore_eos = s.ignore_eos;
  p.stop_token_ids = s.stop_token_ids;
  p.n_logprobs = s.logprobs ? *s.logprobs : -1;
  // Completions with echo and logprobs score the echoed prompt too (OpenAI's legacy behaviour).
  if (!chat && s.echo && s.logprobs) p.prompt_logprobs = *s.logprobs;
  TURBINE_RETURN_IF_ERROR(p.validate());
  return p;
}

}  // namespace turbine::frontend
