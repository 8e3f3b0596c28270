// The request-stage hook: the frontend's plug for a semantic layer (model aliases, guards that
// block with a canned answer, a cache that answers without the engine, extra response headers).
//
// It runs once per generation request, after the protocol adapter parsed the body and before the
// model is looked up, so it sees and may rewrite the protocol-neutral request: the model name (an
// alias resolved to a real model), the messages (a system prompt inserted), template kwargs. It
// may add response headers (x-vsr-*), sent whatever happens next, and it may answer the request
// itself: a CannedResponse is encoded by the request's own protocol, unary or streamed, so a
// guard's refusal looks like any other answer to the client.
//
// After a live response completed, the frontend calls the outcome's `on_finished` with what
// was generated (the semantic cache stores it there), and the hook's own spans hang under the
// request's server span (HookContext::tracer, ::span).
//
// Threads: on_request runs on the preprocessing pool (work_pool.h), so a classifier may take a few
// milliseconds, unless the hook says it never blocks (`blocking()` false: microseconds of CPU, no
// model calls), when small requests run it on the I/O thread like the rest of their
// preprocessing (two thread wake-ups cost more). It must be safe to call concurrently. on_finished
// runs on the request's strand (an I/O thread): it must be quick. The listing methods run on I/O
// threads.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "api/delta.h"
#include "common/status.h"
#include "common/trace.h"
#include "frontend/protocol.h"
#include "http/router.h"

namespace turbine::frontend {

struct HookContext {
  std::string_view endpoint;     // the adapter's endpoint(): "chat_completions", ...
  const http::Headers& headers;  // the request's headers
  // The request's server span (invalid context when tracing is off): a hook's spans are its
  // children, beside the router's `route` span.
  trace::Tracer* tracer = nullptr;
  trace::TraceContext span;
};

// A complete answer produced without the engine.
struct CannedResponse {
  // Per choice (index 0 for one choice): the whole output, with finish set (kStop, or
  // kContentFilter for a guard).
  std::vector<api::ChoiceDelta> choices;
  api::Usage usage;
  std::string model;  // the "model" the response names; "" = the request's
};

// A complete HTTP answer sent byte for byte (a contract that fixes the body, such as the semantic
// router's block responses). Only for the endpoint whose shape the body has.
struct RawResponse {
  int status = 200;
  std::string content_type;
  std::string body;
};

// A live response that completed (every choice finished, no error, the client still there).
struct FinishedResponse {
  std::string model;  // the served model that produced it
  std::span<const ChoiceOutput> choices;
  const api::Usage& usage;
};

struct HookOutcome {
  http::Headers headers;                  // added to the response
  std::optional<CannedResponse> respond;  // set: answer with this; the engine is not called
  std::optional<RawResponse> raw;         // set: answer with exactly this (before `respond`)
  // Called once if the request runs on the engine and completes (not for canned answers).
  std::function<void(const FinishedResponse&)> on_finished;
};

class RequestHook {
 public:
  virtual ~RequestHook() = default;
  // An error is answered in the protocol's error shape (e.g. kInvalidArgument for a bad alias).
  virtual Result<HookOutcome> on_request(ParsedRequest& request, const HookContext& context) = 0;

  // Model names that exist only for the hook (virtual models such as "MoM"): /v1/models lists
  // them beside (or, when list_served_models() is false, instead of) the served ones.
  virtual std::vector<std::string> extra_model_names() const { return {}; }
  virtual bool list_served_models() const { return true; }
  // False when on_request never waits (no model calls, no I/O): small requests then skip the
  // preprocessing pool. Must not change while the frontend runs.
  virtual bool blocking() const { return true; }
};

// The default: changes nothing.
class NoopRequestHook final : public RequestHook {
 public:
  Result<HookOutcome> on_request(ParsedRequest&, const HookContext&) override {
    return HookOutcome{};
  }
};

}  // namespace turbine::frontend
