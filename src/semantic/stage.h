// SemanticStage: the request-level routing and guard layer (issue 21), called by the frontend
// once per request before templating, and once after a live response completes (store()).
//
// process() runs, in order:
//  1. jailbreak guard (heuristic and/or classifier) over the last user message (all user
//     messages with jailbreak.include_history) -> block;
//  2. for a virtual model (MoM, auto): signals (keyword, embedding, domain, length; the model
//     ones evaluated lazily, only when a decision's rule needs them, in priority order) and the
//     first matching decision, else default_decision; for a real model: no selection;
//  3. PII (built-in detectors + optional token classifier) against the policy of the selected
//     model; for a virtual model the decision's next model whose policy allows the types is
//     taken instead; none -> block, or with action redact the spans are replaced and the
//     request goes on;
//  4. reasoning mode and system prompt of the decision;
//  5. semantic cache (exact, then similarity) unless x-vsr-cache-control: no-cache -> cache hit.
// The outcome says what to do; the frontend applies edits, sends headers, and for a pass later
// calls store() with the ticket (unless x-vsr-cache-control: no-store).
//
// Thread-safety: process/store/reload may run on any threads at once. The config and its
// compiled rules are an immutable Snapshot behind a shared_ptr<const>: reload() swaps it under a
// short mutex and in-flight requests keep the one they started with. The cache and metrics are
// internally synchronised. process() waits for its model calls (models.h: asynchronous, local or
// remote): they run concurrently, at most encoder_models.max_parallel_calls at once, and for at
// most encoder_models.timeout_ms together (model_calls.h); a call that fails or does not answer
// in time makes its signal absent and the request goes on (docs/SEMANTIC.md). Without models
// the stage never waits.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "semantic/cache.h"
#include "semantic/config.h"
#include "semantic/metrics.h"
#include "semantic/models.h"
#include "semantic/responses.h"

namespace turbine::semantic {

class FailureLog;  // evaluation.h

struct Message {
  std::string role;  // "system", "user", "assistant", "tool", ...
  std::string text;  // content as plain text (parts joined)
};

struct SemanticRequest {
  Endpoint endpoint = Endpoint::kChat;
  std::string model;              // as requested (may be a virtual model)
  std::vector<Message> messages;  // completions: one "user" message holding the prompt
  std::string tenant;             // the API key ("" = anonymous); tenant_header overrides
  std::vector<Header> headers;    // request headers, names lower case
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage (cache replays)
  // Canonical text of every parameter that shapes the output (sampling, max_tokens, tools,
  // response_format, ...): part of the cache keys, so a hit needs the same parameters.
  std::string params_fingerprint;
};

enum class OutcomeKind { kPass, kBlock, kCacheHit };

struct ReasoningEdit {
  ReasoningType type = ReasoningType::kChatTemplateKwargs;
  std::string parameter;  // chat_template_kwargs key, or "reasoning_effort"
  bool enabled = false;   // kChatTemplateKwargs: the value to set
  std::string effort;     // kReasoningEffort: the value to set (only emitted when enabled)
};

struct SystemPromptEdit {
  std::string text;
  // kInsert: a new system message first (an existing first system message is kept after it);
  // kReplace: the first system message's text replaced, or inserted when there is none.
  SystemPromptMode mode = SystemPromptMode::kInsert;
};

struct MessageEdit {
  size_t index = 0;  // into SemanticRequest::messages
  std::string text;  // replacement (PII redacted)
};

// One signal's result, for the request's trace (the frontend's `semantic` span).
struct SignalScore {
  std::string type;  // keyword, embedding, domain, length, jailbreak, pii, cache
  std::string name;  // the signal's name; jailbreak: heuristic/classifier; pii: the BIO label
  float score = 0.0f;
  bool matched = false;
};

// What process() decided; store() takes the ticket of a pass.
struct CacheTicket {
  CacheKey key;
  std::vector<float> embedding;  // empty: exact tier only
};

struct SemanticOutcome {
  OutcomeKind kind = OutcomeKind::kPass;
  std::string model;             // the model to serve (pass); the request's when not virtual
  bool model_rewritten = false;  // a virtual model was replaced by `model`
  std::string decision;          // "" for a real model
  std::string category;
  float confidence = 0.0f;
  std::optional<SystemPromptEdit> system_prompt;
  std::optional<ReasoningEdit> reasoning;
  std::vector<MessageEdit> redactions;
  std::vector<Header> headers;                // add to the response (every kind)
  std::optional<ImmediateResponse> response;  // kBlock and kCacheHit: send this, no engine
  std::optional<CachedResponse> cached;       // kCacheHit: the stored data (for own rendering)
  std::shared_ptr<const CacheTicket> ticket;  // kPass with the cache on and storing allowed
  std::vector<SignalScore> signals;           // every signal evaluated, first evaluation each
};

struct StageOptions {
  // Served model names; when non-empty, every model the config names must be one ("missing
  // model" is a config error naming the key).
  std::vector<std::string> served_models;
  SemanticCache::Clock clock;             // monotonic ms for the cache; default steady_clock
  std::function<int64_t()> unix_seconds;  // `created` of own responses; default system_clock
};

class SemanticStage {
 public:
  static Result<std::unique_ptr<SemanticStage>> create(const SemanticConfig& config, Models models,
                                                       StageOptions options = {});
  ~SemanticStage();

  SemanticOutcome process(const SemanticRequest& request);
  // A live response for `ticket`'s request completed: remember it.
  void store(const CacheTicket& ticket, CachedResponse response);

  // Builds a snapshot from `config`; on error keeps the current one, counts and returns it.
  // The encoder_models section must stay what create() got (models are loaded once).
  Status reload(const SemanticConfig& config);
  // Counts and logs a reload that failed before reaching reload() (the file did not parse).
  void reload_failed(const Status& why);

  // /v1/models: the virtual model names (the real ones are the frontend's own).
  std::vector<std::string> virtual_models() const;
  bool list_real_models() const;
  bool is_virtual_model(std::string_view name) const;

  MetricsSnapshot metrics() const;  // cache counters included
  // Starts embedding the embedding signals' candidates if they are not yet (a remote model that
  // just appeared), without waiting; requests find them ready afterwards. Any thread.
  void warm_up();
  // Whether process() may call a model (any of Models is set): it then waits for milliseconds.
  bool uses_models() const {
    return models_.embedder || models_.domain_classifier || models_.jailbreak_classifier ||
           models_.pii_classifier;
  }
  SemanticCache& cache() { return *cache_; }

  struct Snapshot;  // the immutable compiled config (stage.cpp)

 private:
  SemanticStage(Models models, StageOptions options);
  std::shared_ptr<const Snapshot> snapshot() const;

  Models models_;
  StageOptions options_;
  EncoderModelsConfig encoder_models_;  // as created; reloads may not change it
  mutable std::mutex snapshot_mu_;      // guards snapshot_ (the pointer, not the pointee)
  std::shared_ptr<const Snapshot> snapshot_;
  std::unique_ptr<SemanticCache> cache_;
  SemanticMetrics metrics_;
  std::unique_ptr<FailureLog> failure_log_;
};

}  // namespace turbine::semantic
