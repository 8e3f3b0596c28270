// The OpenAI-compatible HTTP frontend: a registry of served models and a pipeline of stages.
//
//   HTTP request (connection strand)
//     -> auth, drain check                                     frontend.cpp
//     -> [preprocessing pool] protocol adapter parse           protocol.h, openai_protocol.h
//        -> request hook (aliases, guards, canned answers)     request_hook.h
//        -> model lookup (503 + Retry-After for recently gone) model_registry.h
//        -> chat template, length bound, tokenize, params      preprocessor.h
//     -> engine call: submit, mailbox, cancel, metrics         engine_call.h
//     -> per choice: detokenize, stop strings, text processors postprocessor.h
//     -> ChoiceDeltas -> the protocol's encoder -> client      generation.h
//
// Threads: the HTTP server's io_context threads run every handler coroutine, one strand per
// connection; CPU-heavy preprocessing runs on a small pool (`preprocess_threads`) so the event
// loop stays responsive; the engine thread runs the model. Nothing here is touched by the engine
// thread except through posted callbacks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/response_store.h"
#include "common/status.h"
#include "common/trace.h"
#include "encoder/async_encoder.h"
#include "engine/async_engine.h"
#include "frontend/postprocessor.h"
#include "frontend/request_hook.h"
#include "http/request_checks.h"
#include "model/model.h"
#include "model/model_info.h"
#include "parsers/reasoning_parser.h"
#include "tokenizer/tokenizer.h"

namespace turbine::frontend {

struct FrontendOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8000;
  int http_threads = 1;
  std::string served_model_name;       // empty: the model's own name
  std::optional<std::string> api_key;  // when set, all but /health /live /metrics (auth.h)
  size_t max_body_bytes = 16 << 20;
  http::CorsOptions cors;                  // default: no CORS
  size_t max_connections = 0;              // 0: from the descriptor limit (http::ServerOptions)
  int default_completion_max_tokens = 16;  // OpenAI's legacy default for /v1/completions
  // More series for /metrics (e.g. the router's), in Prometheus text format; called per scrape
  // on an HTTP thread.
  std::function<std::string()> extra_metrics;
  // Spans for every generation request (a child of the client's `traceparent`, when sent); the
  // engine request carries the span's context to the router and the worker. Null: no tracing.
  std::shared_ptr<trace::Tracer> tracer;
  bool ui = true;  // GET / serves the chat playground (frontend/playground.h); --no-ui: 404
  // Threads that preprocess requests off the I/O threads: bodies over 16 KiB, requests with their
  // own chat_template, and every request when a request_hook is set (parse, hook, template,
  // tokenize). Smaller requests are cheaper than the hop and run on the I/O thread.
  int preprocess_threads = 2;
  // How long a removed model's name answers 503 + Retry-After (its workers may come back) before
  // it becomes an unknown name (404).
  std::chrono::seconds removed_model_retention = std::chrono::minutes(10);
  // Runs before each generation request is routed (semantic layer). Null: none.
  std::shared_ptr<RequestHook> request_hook;
  // The Responses API's store (previous_response_id, GET/DELETE /v1/responses/{id}): bounded,
  // with a TTL, in memory.
  api::ResponseStore::Options response_store;

  Status validate() const;
};

// One model the frontend serves. The frontend may serve several, and models may come and go
// while it runs (the distributed runtime adds one when its first worker appears and removes it
// when the last one leaves).
struct ServedModel {
  std::string name;  // what clients put in "model"
  // Vocabulary and chat template (model/model_info.h: read without the weights).
  std::shared_ptr<const model::ModelInfo> info;
  std::shared_ptr<tokenizer::Tokenizer> tokenizer;
  std::shared_ptr<engine::AsyncEngine> engine;
  // Reasoning / tool-call parsers for chat responses (postprocessor.h, output_parsers.h); empty:
  // none.
  TextProcessorFactory text_processors;
  // The reasoning parser's format (output_parsers.h ModelParsers): output constraints start after
  // the reasoning. (Default-initialized like `encoder`.)
  parsers::ReasoningFormat reasoning_format = parsers::ReasoningFormat::kNone;
  // An encoder model (embeddings, classification, rerank): set instead of model, tokenizer and
  // engine; served on the encoder routes (encoder_routes.h) and refused by the generative ones.
  // (A default initializer: aggregate initialisations that stop before it stay warning-free.)
  std::shared_ptr<encoder::AsyncEncoder> encoder = nullptr;
};

// A worker instance as /health lists it.
struct HealthInstance {
  std::string ns;
  std::string component;
  std::string endpoint;
  uint64_t instance_id = 0;
};
// Called on an HTTP thread for every /health; must be thread-safe and quick.
using HealthSource = std::function<std::vector<HealthInstance>()>;

class Frontend {
 public:
  // A frontend without models yet (add_model later).
  static Result<std::unique_ptr<Frontend>> create(FrontendOptions options);
  // A frontend serving one model (`turbine run`); named options.served_model_name, else the
  // model's name.
  static Result<std::unique_ptr<Frontend>> create(FrontendOptions options,
                                                  std::shared_ptr<const model::Model> model,
                                                  std::unique_ptr<tokenizer::Tokenizer> tokenizer,
                                                  std::unique_ptr<engine::AsyncEngine> engine);
  virtual ~Frontend() = default;

  // Adds (or replaces, by name) a model; any thread. Requests already running keep the entry
  // they started with.
  virtual Status add_model(ServedModel model) = 0;
  // Requests for it get 503 + Retry-After for `removed_model_retention`, 404 after that (or
  // until it is added again); running ones finish. Any thread.
  virtual void remove_model(const std::string& name) = 0;
  virtual std::vector<std::string> model_names() const = 0;
  // With a source, /health reports {"status", "instances": [...]} and is unhealthy (503) when
  // there are no instances. Call before start().
  virtual void set_health_source(HealthSource source) = 0;

  // Binds and starts serving; port() is the bound port afterwards (useful with port 0).
  virtual Status start() = 0;
  virtual uint16_t port() const = 0;
  // Graceful stop: refuse new connections and requests (503), let in-flight requests finish for
  // up to `grace`, then cancel what is left, stop the engines and the server.
  virtual void shutdown(std::chrono::milliseconds grace) = 0;
};

}  // namespace turbine::frontend
