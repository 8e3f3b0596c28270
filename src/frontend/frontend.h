// The OpenAI-compatible HTTP frontend of a single-process `turbine run`.
//
// Owns the HTTP server, the tokenizer and the engine handle. Requests flow:
// HTTP (connection strand) -> parse + validate -> chat template -> tokenize -> engine.submit ->
// engine thread runs steps and calls back -> outputs posted back to the connection's strand ->
// incremental detokenization + stop strings -> JSON or SSE chunks -> client.
//
// Threads: the HTTP server's io_context threads run every handler coroutine, one strand per
// connection; the engine thread runs the model. Nothing here is touched by the engine thread
// except through posted callbacks.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "engine/async_engine.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace turbine::frontend {

struct FrontendOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8000;
  int http_threads = 1;
  std::string served_model_name;       // empty: the model's own name
  std::optional<std::string> api_key;  // when set, /v1/* and /tokenize need `Bearer <key>`
  size_t max_body_bytes = 16 << 20;
  int default_completion_max_tokens = 16;  // OpenAI's legacy default for /v1/completions

  Status validate() const;
};

class Frontend {
 public:
  static Result<std::unique_ptr<Frontend>> create(FrontendOptions options,
                                                  std::shared_ptr<const model::Model> model,
                                                  std::unique_ptr<tokenizer::Tokenizer> tokenizer,
                                                  std::unique_ptr<engine::AsyncEngine> engine);
  virtual ~Frontend() = default;

  // Binds and starts serving; port() is the bound port afterwards (useful with port 0).
  virtual Status start() = 0;
  virtual uint16_t port() const = 0;
  // Graceful stop: refuse new connections and requests (503), let in-flight requests finish for
  // up to `grace`, then cancel what is left, stop the engine and the server.
  virtual void shutdown(std::chrono::milliseconds grace) = 0;
};

}  // namespace turbine::frontend
