// SemanticHook: the frontend's RequestHook over semantic::SemanticStage (issue 21).
//
// Per request (on the preprocessing pool): the parsed request becomes a SemanticRequest (chat
// messages as they are; a completions prompt as one user message; the tenant from the API key;
// the request headers; a fingerprint of every parameter that shapes the output), the stage
// decides, and the outcome is applied:
//  - pass: the model rewritten (virtual models), the system prompt inserted or replaced, the
//    reasoning switch written into chat_template_kwargs (and `reasoning_effort`), PII redacted;
//    the x-vsr-* headers added; a cacheable request gets an on_finished callback that stores the
//    finished response (unary or streamed) in the semantic cache;
//  - block: on /v1/chat/completions the semantic router's body byte for byte (HTTP 200,
//    content_filter, one chunk + [DONE] when streaming); other endpoints get the same message
//    as a canned answer in their own protocol;
//  - cache hit: a canned answer in the request's own protocol, so a replay is encoded exactly as
//    a live response is (role chunk, content chunks, finish, usage, [DONE]).
// A `semantic` span (decision, model, path, each signal's score) goes under the request's span.
//
// Thread-safety: on_request may run on many threads at once (the stage is thread-safe);
// on_finished callbacks run on request strands and only insert into the cache.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "frontend/request_hook.h"
#include "semantic/stage.h"

namespace turbine::semantic_hook {

class SemanticHook final : public frontend::RequestHook {
 public:
  explicit SemanticHook(std::shared_ptr<semantic::SemanticStage> stage);

  Result<frontend::HookOutcome> on_request(frontend::ParsedRequest& request,
                                           const frontend::HookContext& context) override;
  std::vector<std::string> extra_model_names() const override;
  bool list_served_models() const override;
  // Without encoder models the stage costs microseconds: small requests skip the pool.
  bool blocking() const override { return stage_->uses_models(); }

 private:
  std::shared_ptr<semantic::SemanticStage> stage_;
};

// The stage's view of a request (exposed for tests).
semantic::SemanticRequest to_semantic_request(const frontend::ParsedRequest& request,
                                              const frontend::HookContext& context);
// Whether a finished response of this request may be cached and replayed: one choice, one text
// prompt, no logprobs (a replay has none).
bool cacheable(const frontend::ParsedRequest& request);
// Applies a pass outcome's edits to the request (model, system prompt, reasoning, redactions).
void apply_edits(const semantic::SemanticOutcome& outcome, frontend::ParsedRequest& request);
// A cached response as a canned answer: the text in word-sized pieces, its finish reason and
// usage, its model.
frontend::CannedResponse canned_replay(const semantic::CachedResponse& cached);

}  // namespace turbine::semantic_hook
