// The preprocessor: a protocol-neutral request -> the engine requests of its choices.
//
//   chat:        messages --chat template--> text --length bound--> tokenize --> checks + params
//   completions: each prompt (text or token ids)  --length bound--> tokenize --> checks + params
//
// The length bound refuses text that cannot fit the context before it is tokenized: no
// tokenization of n bytes yields fewer than n / (max_token_bytes * kNormalizationSlack) tokens,
// so a 10 MB prompt for a 4k context costs a division, not a tokenizer pass and its memory.
//
// Choices: n per prompt (choice index = prompt index * n + k, as OpenAI numbers them); choice k of
// a seeded request samples with seed + k so the n choices differ but stay reproducible. The
// sequences of one prompt share a random prompt group (SamplingParams::prompt_group) so that the
// engine computes the prompt once. Completions with best_of > n run best_of sequences per prompt
// (indices prompt * best_of + k) with logprobs; generation keeps the n best.
//
// Chat requests also get: reasoning controls as chat-template kwargs (reasoning_effort, Anthropic
// thinking -> enable_thinking; the request's own kwargs win), the constraint of tool_choice /
// output format (frontend/constraint_plan.h), logit_bias ids checked against the vocabulary.
//
// Threads: a Preprocessor is immutable; prepare() is pure CPU work (template rendering,
// tokenization) and runs on the frontend's preprocessing pool (work_pool.h), never on an I/O
// thread. Safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/openai.h"
#include "common/status.h"
#include "engine/sampling.h"
#include "frontend/constraint_plan.h"
#include "frontend/model_registry.h"
#include "frontend/protocol.h"

namespace turbine::frontend {

// Normalizers may shrink text before it is split into tokens (NFC composition, accent
// stripping: at most 3 bytes -> 1); the bound allows 4x.
inline constexpr size_t kNormalizationSlack = 4;

struct PreparedChoice {
  int index = 0;  // the choice's index in the response
  std::shared_ptr<const std::vector<int32_t>> prompt;
  std::string echo;  // completions with echo: the prompt text, sent before the completion
  engine::SamplingParams params;
};

struct PreparedRequest {
  bool chat = false;
  api::SamplingOptions sampling;  // the request's options (stream, usage, logprobs, stop, ...)
  std::vector<PreparedChoice> choices;  // by index
  // Engine sequences per prompt: n, or best_of when larger (the n best are returned).
  int sequences_per_prompt = 1;
  ToolOutputForm tool_form = ToolOutputForm::kModel;  // what the engine enforces for tool_choice
  std::string prompt_text;  // chat: the rendered prompt (text processors look at its end)
  std::string tools_json;   // chat: the request's tools, "" when none
};

struct PreprocessOptions {
  int default_completion_max_tokens = 16;  // OpenAI's legacy default for /v1/completions
};

// A fresh non-zero prompt group id (random: unique among live requests with high probability;
// a collision only makes one request wait for another's prefill).
uint64_t new_prompt_group();

class Preprocessor {
 public:
  explicit Preprocessor(PreprocessOptions options = {}) : options_(options) {}

  // `prompt_field` names the prompt in length errors ("messages", "prompt", "input").
  Result<PreparedRequest> prepare(const ParsedRequest& request, const ModelEntry& model,
                                  std::string_view prompt_field) const;

  // The engine parameters of one prompt of `prompt_len` tokens: length checks against the
  // context (400 naming `prompt_field` or max_tokens), max_tokens defaults, sampling fields.
  Result<engine::SamplingParams> engine_params(const api::SamplingOptions& s, bool chat,
                                               size_t prompt_len, std::string_view prompt_field,
                                               int64_t max_context) const;

  // Structured outputs: the request's constraint as the engine takes it, compiled here (on the
  // preprocessing pool, through the model's cached compiler) so that a bad one is a 400 naming
  // its field and saying what is wrong before anything reaches the engine.
  static Result<structured::ConstraintSpec> check_constraint(const api::OutputConstraint& c,
                                                             const ModelEntry& model);
  // The request's template fields with its reasoning controls (reasoning_effort, Anthropic
  // thinking as enable_thinking) added as kwargs, unless the request's kwargs name them.
  static Result<api::ChatTemplateFields> with_reasoning_kwargs(const api::ChatRequest& r);

  // The bound: kInvalidArgument when `text_bytes` of text certainly tokenize to at least the
  // model's context length.
  static Status check_text_bound(size_t text_bytes, const ModelEntry& model, bool chat,
                                 std::string_view prompt_field);

 private:
  Result<PreparedRequest> prepare_chat(const api::ChatRequest& r, const ModelEntry& model,
                                       std::string_view prompt_field) const;
  Result<PreparedRequest> prepare_completion(const api::CompletionRequest& r,
                                             const ModelEntry& model,
                                             std::string_view prompt_field) const;
  // n choices of one prompt, appended to `out`.
  Status add_choices(PreparedRequest& out, int prompt_index,
                     std::shared_ptr<const std::vector<int32_t>> prompt, const std::string& echo,
                     const ModelEntry& model, std::string_view prompt_field) const;

  const PreprocessOptions options_;
};

}  // namespace turbine::frontend
