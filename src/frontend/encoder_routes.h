// The encoder models' routes: POST /v1/embeddings, /classify (+ /v1/classify), /v1/rerank
// (+ /rerank, /v2/rerank) and /v1/score (+ /score).
//
//   parse (api/embeddings.h; bodies over 16 KiB on the preprocessing pool)
//     -> model lookup (an empty name: the first encoder model; a generative model: 400 saying why)
//     -> the op the endpoint and the model's task ask for (a wrong one: 400 saying what it does)
//     -> AsyncEncoder::submit (the local EncoderService, or a RoutedEncoder over workers: the
//        worker tokenizes, runs the model and the heads)
//     -> the endpoint's response body (api/embeddings.h)
// and, per model, the frontend's request metrics (endpoint label "embeddings", "classify",
// "rerank", "score": requests, in flight, duration, input tokens).
//
// wrong_endpoint() is the other direction: the 400 a generative endpoint gives for an encoder
// model.
//
// Threads: handlers run on their connection's strand; the encoder's callback (any thread) posts
// the result back to it. Every referenced object outlives the routes (the frontend owns them and
// stops the server last).
#pragma once

#include <atomic>
#include <functional>
#include <string_view>

#include "common/status.h"
#include "frontend/model_registry.h"
#include "frontend/protocol.h"
#include "frontend/work_pool.h"
#include "http/router.h"
#include "metrics/metrics.h"

namespace turbine::frontend {

struct EncoderRoutesEnv {
  ModelRegistry& registry;
  metrics::FrontendMetrics& metrics;
  WorkPool& pool;
  std::atomic<int>& inflight;                         // shutdown waits for requests counted here
  const ProtocolAdapter& errors;                      // OpenAI-shaped errors
  std::function<Status(const http::Request&)> admit;  // auth + not shutting down
};

void add_encoder_routes(http::Router& router, const EncoderRoutesEnv& env);

// The 400 for a generative endpoint (`route`, e.g. "/v1/chat/completions") called on an encoder
// model: what the model is and which endpoint serves it.
Status wrong_endpoint(const ModelEntry& model, std::string_view route);

}  // namespace turbine::frontend
