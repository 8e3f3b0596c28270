// The generation stage: a prepared request through the engine and back to the client.
//
//   EngineCall (submit, mailbox, cancel, TTFT/ITL/queued metrics)
//     -> one ChoicePostprocessor per choice (detokenize, stop strings, text processors)
//     -> ChoiceDeltas, interleaved across choices as the engine produces them
//     -> the protocol's ResponseEncoder: stream events written per engine wake-up, or one body
//
// plus the request's span, usage, the frontend's request metrics and disconnect handling (the
// engine requests of a client that went away are cancelled). The HTTP side is only the abstract
// http::ResponseWriter, so tests drive this stage with a fake writer and a fake engine.
//
// Threads: every function here runs on the request's strand (the coroutine's executor).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "common/status.h"
#include "common/trace.h"
#include "frontend/model_registry.h"
#include "frontend/preprocessor.h"
#include "frontend/protocol.h"
#include "frontend/request_hook.h"
#include "http/router.h"
#include "metrics/metrics.h"

namespace turbine::frontend {

inline constexpr const char* kJsonContentType = "application/json";

// What the frontend lends every generation. All referenced objects outlive the requests.
struct GenerationEnv {
  metrics::FrontendMetrics& metrics;
  trace::Tracer& tracer;
  std::atomic<uint64_t>& next_engine_id;
  std::atomic<int>& inflight;  // requests between submit and their last byte (shutdown waits)
};

// One request, ready to run.
struct Generation {
  const ProtocolAdapter* protocol = nullptr;
  ModelPtr model;
  std::shared_ptr<const ParsedRequest> request;  // as parsed (and rewritten by the hook)
  PreparedRequest prepared;
  uint64_t worker_instance_id = 0;  // x-worker-instance-id; 0: the router chooses
  trace::TraceContext parent;       // the client's traceparent (invalid: a new trace)
  http::Headers headers;            // extra response headers (the request hook's)
};

// Runs `g` and answers on `w`: unary, or an event stream.
boost::asio::awaitable<void> run_generation(const GenerationEnv& env, Generation g,
                                            http::ResponseWriter& w);

// Answers with a hook's canned response, encoded by `protocol` (unary or streamed as the request
// asks), without the engine.
boost::asio::awaitable<void> send_canned(const GenerationEnv& env, const ProtocolAdapter& protocol,
                                         std::shared_ptr<const ParsedRequest> request,
                                         CannedResponse canned, http::Headers headers,
                                         http::ResponseWriter& w);

// A response body, counted in the HTTP metrics.
boost::asio::awaitable<void> send_body(metrics::FrontendMetrics& metrics, http::ResponseWriter& w,
                                       int status, std::string body, http::Headers headers = {},
                                       const char* content_type = kJsonContentType);
// An error in `protocol`'s shape (internal errors are logged).
boost::asio::awaitable<void> send_error(metrics::FrontendMetrics& metrics,
                                        const ProtocolAdapter& protocol, http::ResponseWriter& w,
                                        const Status& status, http::Headers headers = {});

}  // namespace turbine::frontend
