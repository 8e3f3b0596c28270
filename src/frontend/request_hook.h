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
// Threads: on_request runs on the preprocessing pool (work_pool.h), never on an I/O thread, so a
// classifier may take a few milliseconds; it must be safe to call concurrently.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "api/delta.h"
#include "common/status.h"
#include "frontend/protocol.h"
#include "http/router.h"

namespace turbine::frontend {

struct HookContext {
  std::string_view endpoint;     // the adapter's endpoint(): "chat_completions", ...
  const http::Headers& headers;  // the request's headers
};

// A complete answer produced without the engine.
struct CannedResponse {
  // Per choice (index 0 for one choice): the whole output, with finish set (kStop, or
  // kContentFilter for a guard).
  std::vector<api::ChoiceDelta> choices;
  api::Usage usage;
  std::string model;  // the "model" the response names; "" = the request's
};

struct HookOutcome {
  http::Headers headers;                  // added to the response
  std::optional<CannedResponse> respond;  // set: answer with this; the engine is not called
};

class RequestHook {
 public:
  virtual ~RequestHook() = default;
  // An error is answered in the protocol's error shape (e.g. kInvalidArgument for a bad alias).
  virtual Result<HookOutcome> on_request(ParsedRequest& request, const HookContext& context) = 0;
};

// The default: changes nothing.
class NoopRequestHook final : public RequestHook {
 public:
  Result<HookOutcome> on_request(ParsedRequest&, const HookContext&) override {
    return HookOutcome{};
  }
};

}  // namespace turbine::frontend
