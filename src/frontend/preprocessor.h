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
// a seeded request samples with seed + k so the n choices differ but stay reproducible.
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
  std::string prompt_text;  // chat: the rendered prompt (text processors look at its end)
  std::string tools_json;   // chat: the request's tools, "" when none
};

struct PreprocessOptions {
  int default_completion_max_tokens = 16;  // OpenAI's legacy default for /v1/completions
};

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
