#include "frontend/encoder_routes.h"

#include <chrono>
#include <memory>
#include <optional>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "api/codec_util.h"
#include "api/embeddings.h"
#include "frontend/generation.h"

namespace turbine::frontend {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using encoder::AsyncEncoder;
using encoder::EncoderOp;
using encoder::EncoderRequest;
using encoder::EncoderResponse;
using encoder::EncoderTask;

constexpr size_t kInlineBodyBytes = 16 << 10;  // smaller bodies are parsed on the I/O thread

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The endpoint that serves a model of `task`.
const char* endpoint_for(EncoderTask task) {
  switch (task) {
    case EncoderTask::kEmbedding: return "/v1/embeddings";
    case EncoderTask::kClassification:
    case EncoderTask::kTokenClassification: return "/classify";
    case EncoderTask::kScore: return "/v1/rerank or /v1/score";
  }
  return "?";
}

// Runs `request` on `enc` and resumes the calling coroutine on its own executor with the result.
// The result lives in shared state, not in the coroutine frame, and the callback owns the
// coroutine's handler until it posts it back: a late callback never writes into a freed frame.
asio::awaitable<Result<EncoderResponse>> call_encoder(AsyncEncoder& enc, EncoderRequest request) {
  auto result = std::make_shared<std::optional<Result<EncoderResponse>>>();
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [&enc, &request, result](auto handler) {
        using H = decltype(handler);
        auto h = std::make_shared<H>(std::move(handler));
        enc.submit(std::move(request), [h, result](Result<EncoderResponse> r) {
          result->emplace(std::move(r));
          auto ex = asio::get_associated_executor(*h);
          asio::post(ex, std::move(*h));
        });
      },
      asio::use_awaitable);
  co_return std::move(**result);
}

void apply(const api::Truncation& t, encoder::EncodeOptions& o) {
  o.truncate = t.to_max;
  o.truncate_tokens = t.tokens;
}

// The model a request names; an empty name: the first encoder model (by name) whose task
// serves the endpoint, else the first encoder model (which then says what it does).
template <typename OpFor>
Result<ModelPtr> find_model(const ModelRegistry& registry, const std::string& name, OpFor op_for) {
  if (!name.empty()) return registry.find(name);
  ModelPtr first;
  for (const ModelPtr& m : registry.models()) {
    if (!m->encoder) continue;
    const EncoderTask task = m->encoder->info().task;
    if (encoder::check_op(task, op_for(task), m->name).is_ok()) return m;
    if (!first) first = m;
  }
  if (first) return first;
  return not_found("no embedding, classification or rerank model is served", "model");
}

class Routes {
 public:
  explicit Routes(const EncoderRoutesEnv& env) : env_(env) {}

  asio::awaitable<void> handle(const char* endpoint, const http::Request& req,
                               http::ResponseWriter& w) {
    if (Status st = env_.admit(req); !st.is_ok()) {
      co_return co_await send_error(env_.metrics, env_.errors, w, st);
    }
    const std::string_view ep(endpoint);
    // Parse on the pool when the body is large (a 16 MiB batch of documents).
    std::optional<Result<Parsed>> parsed;
    if (req.body.size() <= kInlineBodyBytes) {
      parsed.emplace(parse(ep, req.body));
    } else {
      Result<Parsed> pooled = co_await env_.pool.run<Parsed>([&] { return parse(ep, req.body); });
      parsed.emplace(std::move(pooled));
    }
    if (!parsed->has_value()) {
      co_return co_await send_error(env_.metrics, env_.errors, w, parsed->status());
    }
    Parsed& p = **parsed;
    auto model =
        find_model(env_.registry, p.model, [ep](EncoderTask task) { return op_for(ep, task); });
    if (!model.has_value()) {
      co_return co_await send_error(env_.metrics, env_.errors, w, model.status());
    }
    const ModelPtr m = *model;
    if (!m->encoder) {
      co_return co_await send_error(
          env_.metrics, env_.errors, w,
          invalid_argument("model '" + m->name + "' is a generative model: " + req.target +
                               " needs an embedding, classification or rerank model (serve "
                               "one with `turbine run --model <encoder folder>`)",
                           "model"));
    }
    const EncoderTask task = m->encoder->info().task;
    p.request.op = op_for(ep, task);
    metrics::ModelMetrics& mm = env_.metrics.model(m->name);
    if (Status st = encoder::check_op(task, p.request.op, m->name); !st.is_ok()) {
      mm.request_done(ep, metrics::RequestType::kUnary, metrics::RequestStatus::kError);
      co_return co_await send_error(env_.metrics, env_.errors, w, st);
    }
    const auto t0 = Clock::now();
    env_.inflight++;
    mm.inflight.Increment();
    // Rerank answers with its documents: only it keeps a copy of the request.
    EncoderRequest request = ep == "rerank" ? p.request : std::move(p.request);
    Result<EncoderResponse> r = co_await call_encoder(*m->encoder, std::move(request));
    mm.inflight.Decrement();
    if (!r.has_value()) {
      env_.inflight--;
      mm.request_done(ep, metrics::RequestType::kUnary, metrics::RequestStatus::kError);
      co_return co_await send_error(env_.metrics, env_.errors, w, r.status());
    }
    std::string body = respond(ep, p, *r, m->name);
    mm.request_done(ep, metrics::RequestType::kUnary, metrics::RequestStatus::kSuccess);
    mm.request_duration.Observe(std::chrono::duration<double>(Clock::now() - t0).count());
    mm.input_tokens.Observe(static_cast<double>(r->prompt_tokens()));
    co_await send_body(env_.metrics, w, 200, std::move(body));
    env_.inflight--;
  }

 private:
  // What a request parses into: the encoder request and what only the response needs.
  struct Parsed {
    std::string model;
    EncoderRequest request;
    bool base64 = false;  // embeddings
    int top_n = 0;        // rerank
    bool return_documents = true;
  };

  static EncoderOp op_for(std::string_view ep, EncoderTask task) {
    if (ep == "embeddings") return EncoderOp::kEmbed;
    if (ep == "classify") {
      return task == EncoderTask::kTokenClassification ? EncoderOp::kClassifyTokens
                                                       : EncoderOp::kClassify;
    }
    return EncoderOp::kScore;  // rerank, score
  }

  static Result<Parsed> parse(std::string_view ep, std::string_view body) {
    Parsed p;
    encoder::EncodeOptions& o = p.request.options;
    if (ep == "embeddings") {
      TURBINE_ASSIGN_OR_RETURN(api::EmbeddingsRequest r, api::parse_embeddings_request(body));
      p.model = std::move(r.model);
      p.request.texts = std::move(r.texts);
      p.request.token_inputs = std::move(r.token_inputs);
      p.base64 = r.base64;
      o.dimensions = r.dimensions;
      o.normalize = r.normalize;
      apply(r.truncation, o);
    } else if (ep == "classify") {
      TURBINE_ASSIGN_OR_RETURN(api::ClassifyRequest r, api::parse_classify_request(body));
      p.model = std::move(r.model);
      p.request.texts = std::move(r.texts);
      apply(r.truncation, o);
    } else if (ep == "rerank") {
      TURBINE_ASSIGN_OR_RETURN(api::RerankRequest r, api::parse_rerank_request(body));
      p.model = std::move(r.model);
      p.request.queries.push_back(std::move(r.query));
      p.request.texts = std::move(r.documents);
      p.request.input_field = "documents";
      p.top_n = r.top_n;
      p.return_documents = r.return_documents;
      apply(r.truncation, o);
    } else {
      TURBINE_ASSIGN_OR_RETURN(api::ScoreRequest r, api::parse_score_request(body));
      p.model = std::move(r.model);
      p.request.queries = std::move(r.text_1);
      p.request.texts = std::move(r.text_2);
      p.request.input_field = "text_2";
      p.request.query_field = "text_1";
      apply(r.truncation, o);
    }
    return p;
  }

  static std::string respond(std::string_view ep, const Parsed& p, EncoderResponse& r,
                             const std::string& model) {
    const api::PoolingUsage usage{r.prompt_tokens()};
    if (ep == "embeddings") {
      std::vector<std::vector<float>> vectors;
      vectors.reserve(r.embeddings.size());
      for (encoder::Embedding& e : r.embeddings) vectors.push_back(std::move(e.vector));
      return api::embeddings_response(api::make_api_id("embd"), unix_now(), model, vectors,
                                      p.base64, usage);
    }
    if (ep == "classify") {
      std::vector<api::ClassifyItem> items;
      for (const encoder::Classification& c : r.classifications) {
        api::ClassifyItem it;
        it.label = c.labels.at(static_cast<size_t>(c.top)).label;
        for (const encoder::LabelScore& l : c.labels) it.probs.push_back(l.probability);
        items.push_back(std::move(it));
      }
      for (const encoder::TokenClassification& t : r.token_classifications) {
        api::ClassifyItem it;
        it.token_level = true;
        for (const encoder::Entity& e : t.entities)
          it.entities.push_back({e.label, e.score, e.word, e.start, e.end});
        items.push_back(std::move(it));
      }
      return api::classify_response(api::make_api_id("classify"), unix_now(), model, items, usage);
    }
    std::vector<float> scores;
    for (const encoder::Relevance& s : r.scores) scores.push_back(s.score);
    if (ep == "rerank") {
      return api::rerank_response(api::make_api_id("rerank"), model, api::rank(scores, p.top_n),
                                  p.request.texts, p.return_documents, usage);
    }
    return api::score_response(api::make_api_id("score"), unix_now(), model, scores, usage);
  }

  const EncoderRoutesEnv env_;
};

}  // namespace

void add_encoder_routes(http::Router& router, const EncoderRoutesEnv& env) {
  auto routes = std::make_shared<Routes>(env);
  const std::pair<const char*, const char*> paths[] = {
      {"/v1/embeddings", "embeddings"}, {"/classify", "classify"}, {"/v1/classify", "classify"},
      {"/v1/rerank", "rerank"},         {"/rerank", "rerank"},     {"/v2/rerank", "rerank"},
      {"/v1/score", "score"},           {"/score", "score"},
  };
  for (const auto& [path, endpoint] : paths) {
    router.add("POST", path,
               [routes, endpoint = endpoint](const http::Request& req, http::ResponseWriter& w) {
                 return routes->handle(endpoint, req, w);
               });
  }
}

Status wrong_endpoint(const ModelEntry& model, std::string_view route) {
  const EncoderTask task = model.encoder->info().task;
  return invalid_argument("model '" + model.name + "' is an " +
                              (task == EncoderTask::kEmbedding
                                   ? std::string("embedding")
                                   : std::string("encoder (") + encoder::task_name(task) + ")") +
                              " model: it does not generate text, so " + std::string(route) +
                              " cannot serve it; use " + endpoint_for(task),
                          "model");
}

}  // namespace turbine::frontend
