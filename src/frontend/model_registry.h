// The served models: name -> what a request needs to run on one (tokenizer, chat template,
// context length, engine), with a memory of models that went away.
//
// Models come and go while the frontend runs (the distributed runtime adds one when its first
// worker appears and removes it when the last one leaves). A request for a model removed less
// than `retention` ago gets 503 + Retry-After (its workers may be restarting; gateways retry a
// 503 but treat 404 as final); only names never served, or gone for longer, get 404.
//
// Threads: every member is safe from any thread (one mutex; lookups copy a shared_ptr). A
// ModelEntry is immutable and shared by the requests that started on it, so replacing or removing
// a model never disturbs a running request.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api/openai.h"
#include "common/status.h"
#include "encoder/async_encoder.h"
#include "engine/async_engine.h"
#include "frontend/chat_prompt.h"
#include "frontend/output_parsers.h"
#include "frontend/postprocessor.h"
#include "structured/compiler.h"
#include "tokenizer/tokenizer.h"

namespace turbine::frontend {

// A served model as requests see it: a generative model (tokenizer, chat prompt, engine) or an
// encoder model (`encoder` set, the rest empty: the worker tokenizes).
struct ModelEntry {
  std::string name;
  // Encoder models (embeddings, classification, rerank, score): their AsyncEncoder. Null for
  // generative models.
  std::shared_ptr<encoder::AsyncEncoder> encoder;
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer;
  std::shared_ptr<engine::AsyncEngine> engine;
  ChatPrompt chat_prompt;
  int64_t max_context = 0;
  // The longest token in bytes (at least 1): no tokenization of n bytes gives fewer than
  // n / (max_token_bytes * kNormalizationSlack) tokens, so longer text is refused before it is
  // tokenized (preprocessor.h).
  size_t max_token_bytes = 1;
  // Chat requests' text processors (reasoning / tool-call parsers); empty: none.
  TextProcessorFactory text_processors;
  // Structured outputs: compiles constraints against this model's vocabulary (shared with the
  // in-process engines, structured/compiler_registry.h); null: constrained requests get a 400.
  std::shared_ptr<structured::GrammarCompiler> grammar_compiler;
  // The reasoning parser's markup as token ids: a chat request's constraint starts after the
  // reasoning (output_parsers.h constraint_start); inactive: at the first token.
  ReasoningMarkup reasoning;
  int64_t created = 0;  // unix seconds

  api::ModelCard card() const { return {name, created, max_context, "turbine"}; }
};
using ModelPtr = std::shared_ptr<const ModelEntry>;

// The longest token_bytes() of the vocabulary (at least 1); a pass over the vocabulary, so call
// it once per model.
size_t longest_token_bytes(const tokenizer::Tokenizer& tokenizer);

// The structured-outputs compiler of a model whose logits have `n_vocab` rows, shared with the
// in-process engines (structured/compiler_registry.h); null, logged, when the tokenizer's
// vocabulary cannot be matched (constrained requests then get a 400).
std::shared_ptr<structured::GrammarCompiler> make_grammar_compiler(
    const tokenizer::Tokenizer& tokenizer, int n_vocab);

class ModelRegistry {
 public:
  using Clock = std::chrono::steady_clock;
  // `now` is injectable for tests.
  explicit ModelRegistry(std::chrono::seconds retention = std::chrono::minutes(10),
                         std::function<Clock::time_point()> now = Clock::now);

  // Adds or replaces (by name).
  void add(ModelPtr model);
  // Removes `name` and remembers it for `retention`.
  void remove(const std::string& name);

  // The model a request names. Not served: kUnavailable (field "model") when it was removed
  // within the retention, else kNotFound (field "model": OpenAI's model_not_found). An empty
  // name means the first model added that is still served (for /tokenize, as vLLM).
  Result<ModelPtr> find(const std::string& name) const;
  // Only served models; kNotFound otherwise (GET /v1/models/{id}).
  Result<ModelPtr> find_served(const std::string& name) const;

  std::vector<ModelPtr> models() const;  // by name
  std::vector<std::string> names() const;

 private:
  const std::chrono::seconds retention_;
  const std::function<Clock::time_point()> now_;
  mutable std::mutex mu_;  // guards everything below
  std::map<std::string, ModelPtr> models_;
  std::vector<std::string> order_;  // names in the order first added, for the default model
  mutable std::map<std::string, Clock::time_point> removed_;  // name -> when
};

}  // namespace turbine::frontend
