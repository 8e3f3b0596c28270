#include "frontend/frontend.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "api/anthropic.h"
#include "api/errors.h"
#include "api/openai.h"
#include "api/response_store.h"
#include "frontend/anthropic_protocol.h"
#include "frontend/auth.h"
#include "frontend/encoder_routes.h"
#include "frontend/generation.h"
#include "frontend/model_registry.h"
#include "frontend/openai_protocol.h"
#include "frontend/playground.h"
#include "frontend/preprocessor.h"
#include "frontend/responses_protocol.h"
#include "frontend/work_pool.h"
#include "http/router.h"
#include "http/server.h"
#include "metrics/metrics.h"
#include "tokenizer/utf8.h"

namespace turbine::frontend {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using http::Request;
using http::ResponseWriter;

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// "%2F" -> "/": model ids may hold slashes ("org/model"), sent raw or escaped.
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned v = 0;
    if (s[i] == '%' && i + 2 < s.size() &&
        std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16).ptr == s.data() + i + 3) {
      out.push_back(static_cast<char>(v));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Bodies up to this size are preprocessed on the I/O thread (see handle_generate): parsing and
// tokenizing 16 KiB takes well under a millisecond.
constexpr size_t kInlineBodyBytes = 16 << 10;

// Whether a body may carry an output constraint (structured outputs): a cheap superset test.
bool may_constrain(std::string_view body) {
  for (std::string_view key : {"\"response_format\"", "\"structured_outputs\"", "\"guided_"}) {
    if (body.find(key) != std::string_view::npos) return true;
  }
  return false;
}

// What the preprocessing stage hands back for a generation request.
struct Staged {
  Generation generation;
  std::optional<CannedResponse> canned;
  std::optional<RawResponse> raw;
};

class FrontendImpl final : public Frontend {
 public:
  FrontendImpl(FrontendOptions options, std::string metrics_name)
      : options_(std::move(options)),
        tracer_(options_.tracer ? options_.tracer : std::make_shared<trace::Tracer>()),
        hook_(options_.request_hook ? options_.request_hook : std::make_shared<NoopRequestHook>()),
        metrics_(std::move(metrics_name)),
        registry_(options_.removed_model_retention),
        preprocessor_({options_.default_completion_max_tokens}),
        pool_(options_.preprocess_threads),
        chat_(make_openai_chat_adapter()),
        completions_(make_openai_completions_adapter()),
        response_store_(options_.response_store),
        responses_(make_responses_adapter(response_store_)),
        messages_(make_anthropic_adapter()),
        env_{metrics_, *tracer_, next_engine_id_, inflight_} {}

  Status add_model(ServedModel m) override {
    if (m.encoder) return add_encoder_model(std::move(m));
    if (m.name.empty() || !m.info || !m.tokenizer || !m.engine) {
      return internal_error("a served model needs a name, model info, tokenizer and engine");
    }
    auto entry = std::make_shared<ModelEntry>();
    entry->name = std::move(m.name);
    entry->chat_prompt = make_chat_prompt(m.info->vocab, *m.tokenizer);
    entry->max_token_bytes = longest_token_bytes(*m.tokenizer);
    entry->tokenizer = std::move(m.tokenizer);
    entry->engine = std::move(m.engine);
    entry->max_context = entry->engine->max_context();
    entry->text_processors = std::move(m.text_processors);
    entry->grammar_compiler = make_grammar_compiler(*entry->tokenizer, m.info->n_vocab);
    entry->reasoning = reasoning_markup(m.reasoning_format, *entry->tokenizer);
    entry->created = unix_now();
    metrics::ModelMetrics& mm = metrics_.model(entry->name);
    mm.context_length.Set(static_cast<double>(entry->max_context));
    mm.max_num_seqs.Set(entry->engine->num_slots());
    registry_.add(std::move(entry));
    return Status::ok();
  }

  // Encoder models carry no tokenizer or engine here: their workers tokenize and run them.
  Status add_encoder_model(ServedModel m) {
    if (m.name.empty()) return internal_error("a served model needs a name");
    auto entry = std::make_shared<ModelEntry>();
    entry->name = std::move(m.name);
    entry->encoder = std::move(m.encoder);
    entry->max_context = entry->encoder->info().max_tokens;
    entry->created = unix_now();
    metrics_.model(entry->name).context_length.Set(static_cast<double>(entry->max_context));
    registry_.add(std::move(entry));
    return Status::ok();
  }

  void remove_model(const std::string& name) override { registry_.remove(name); }
  std::vector<std::string> model_names() const override { return registry_.names(); }
  void set_health_source(HealthSource source) override { health_source_ = std::move(source); }

  ~FrontendImpl() override { shutdown(std::chrono::milliseconds(0)); }

  Status start() override {
    http::Router router;
    router.set_error_body(
        [](int status, std::string_view message) {
          return api::error_json_for_http(status, message);
        },
        kJsonContentType);
    router.add("POST", "/v1/completions", [this](const Request& req, ResponseWriter& w) {
      return handle_generate(*completions_, req, w);
    });
    router.add("POST", "/v1/chat/completions", [this](const Request& req, ResponseWriter& w) {
      return handle_generate(*chat_, req, w);
    });
    router.add("POST", "/v1/responses", [this](const Request& req, ResponseWriter& w) {
      return handle_generate(*responses_, req, w);
    });
    router.add_prefix("GET", "/v1/responses/", [this](const Request& req, ResponseWriter& w) {
      return handle_stored_response(req, w, /*erase=*/false);
    });
    router.add_prefix("DELETE", "/v1/responses/", [this](const Request& req, ResponseWriter& w) {
      return handle_stored_response(req, w, /*erase=*/true);
    });
    router.add("POST", "/v1/messages", [this](const Request& req, ResponseWriter& w) {
      return handle_generate(*messages_, req, w);
    });
    add(router, "POST", "/v1/messages/count_tokens", &FrontendImpl::handle_count_tokens);
    add(router, "GET", "/v1/models", &FrontendImpl::handle_models);
    // By prefix: models announced after start are routed too, ids with '/' included.
    router.add_prefix("GET", "/v1/models/", [this](const Request& req, ResponseWriter& w) {
      return handle_model(req, w);
    });
    add(router, "POST", "/tokenize", &FrontendImpl::handle_tokenize);
    add(router, "POST", "/detokenize", &FrontendImpl::handle_detokenize);
    add_encoder_routes(router,
                       {registry_, metrics_, pool_, inflight_, *chat_, [this](const Request& req) {
                          TURBINE_RETURN_IF_ERROR(authorize(req));
                          return check_accepting();
                        }});
    add(router, "GET", "/health", &FrontendImpl::handle_health);
    add(router, "GET", "/live", &FrontendImpl::handle_live);
    add(router, "GET", "/metrics", &FrontendImpl::handle_metrics);
    if (options_.ui) router.add("GET", "/", playground_handler());

    http::ServerOptions sopts;
    sopts.host = options_.host;
    sopts.port = options_.port;
    sopts.n_threads = options_.http_threads;
    sopts.max_body_bytes = options_.max_body_bytes;
    sopts.cors = options_.cors;
    sopts.max_connections = options_.max_connections;
    sopts.head_check = auth::make_head_check(options_.api_key);  // 401 before the body is read
    server_ = std::make_unique<http::Server>(sopts, std::move(router));
    return server_->start();
  }

  uint16_t port() const override { return server_ ? server_->port() : 0; }

  void shutdown(std::chrono::milliseconds grace) override {
    if (stopped_.exchange(true)) return;
    draining_ = true;
    if (server_) server_->stop_accepting();
    const auto deadline = Clock::now() + grace;
    while (inflight_.load() > 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (inflight_.load() > 0) {
      spdlog::warn("{} requests still running after the grace period; cancelling them",
                   inflight_.load());
    }
    for (const ModelPtr& m : registry_.models()) {
      if (m->engine) m->engine->shutdown();  // cancels what is left; handlers finish with "abort"
      if (m->encoder) m->encoder->shutdown();
    }
    const auto flush_deadline = Clock::now() + std::chrono::seconds(2);
    while (inflight_.load() > 0 && Clock::now() < flush_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    // Before the server: pool jobs resume their coroutines on the server's strands.
    pool_.stop();
    if (server_) server_->stop();
  }

 private:
  using Method = asio::awaitable<void> (FrontendImpl::*)(const Request&, ResponseWriter&);

  void add(http::Router& router, std::string method, std::string path, Method m) {
    router.add(std::move(method), std::move(path),
               [this, m](const Request& req, ResponseWriter& w) { return (this->*m)(req, w); });
  }

  asio::awaitable<void> reply(ResponseWriter& w, int status, std::string body,
                              const char* content_type = kJsonContentType) {
    co_await send_body(metrics_, w, status, std::move(body), {}, content_type);
  }

  // Errors of the non-generation routes (OpenAI shape).
  asio::awaitable<void> reply_error(ResponseWriter& w, const Status& st) {
    co_await send_error(metrics_, *chat_, w, st);
  }

  // Also checked from the head by the server (auth.h); kept for handlers reached another way.
  Status authorize(const Request& req) const { return auth::check_api_key(req, options_.api_key); }

  // `x-worker-instance-id: <hex>` pins the request to one worker instance (absent: the router
  // chooses), as Dynamo's header does. A malformed value is a 400.
  static Result<uint64_t> worker_instance_id(const Request& req) {
    std::string_view v = req.header("x-worker-instance-id");
    if (v.empty()) return uint64_t{0};
    if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) v.remove_prefix(2);
    uint64_t id = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), id, 16);
    if (ec != std::errc() || end != v.data() + v.size() || id == 0) {
      return invalid_argument("x-worker-instance-id must be a non-zero hexadecimal instance id",
                              "x-worker-instance-id");
    }
    return id;
  }

  // The client's W3C trace context; a missing or malformed `traceparent` starts a new trace.
  static trace::TraceContext incoming_trace(const Request& req) {
    auto c = trace::parse_traceparent(req.header("traceparent"));
    return c ? *c : trace::TraceContext{};
  }

  Status check_accepting() const {
    if (draining_) return {StatusCode::kUnavailable, "the server is shutting down"};
    return Status::ok();
  }

  // ---- generation ----------------------------------------------------------------------------

  // Parse -> hook -> model -> preprocess, on the pool. Errors after the model is known count in
  // its request metrics.
  // `span`: the request's server span, parent of the hook's spans.
  Result<Staged> stage(const ProtocolAdapter& protocol, const Request& req,
                       const trace::TraceContext& span) const {
    TURBINE_ASSIGN_OR_RETURN(ParsedRequest parsed, protocol.parse(req.body));
    TURBINE_ASSIGN_OR_RETURN(
        HookOutcome hooked,
        hook_->on_request(parsed, {protocol.endpoint(), req.headers, tracer_.get(), span}));
    Staged s;
    Generation& g = s.generation;
    g.protocol = &protocol;
    g.headers = std::move(hooked.headers);
    g.on_finished = std::move(hooked.on_finished);
    g.request = std::make_shared<const ParsedRequest>(std::move(parsed));
    if (hooked.raw) {
      s.raw = std::move(hooked.raw);
      return s;
    }
    if (hooked.respond) {
      s.canned = std::move(hooked.respond);
      return s;
    }
    TURBINE_ASSIGN_OR_RETURN(g.model, registry_.find(model_of(*g.request)));
    if (g.model->encoder) return wrong_endpoint(*g.model, protocol.route().substr(5));
    auto prepared = preprocessor_.prepare(*g.request, *g.model, protocol.prompt_field());
    if (!prepared) {
      metrics_.model(g.model->name)
          .request_done(protocol.endpoint(),
                        sampling_of(*g.request).stream ? metrics::RequestType::kStream
                                                       : metrics::RequestType::kUnary,
                        metrics::RequestStatus::kError);
      return prepared.status();
    }
    g.prepared = std::move(*prepared);
    return s;
  }

  asio::awaitable<void> handle_generate(const ProtocolAdapter& protocol, const Request& req,
                                        ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) {
      co_return co_await send_error(metrics_, protocol, w, st);
    }
    if (Status st = check_accepting(); !st.is_ok()) {
      co_return co_await send_error(metrics_, protocol, w, st);
    }
    auto instance = worker_instance_id(req);
    if (!instance) co_return co_await send_error(metrics_, protocol, w, instance.status());
    // Small bodies with the model's own template cost less than the hop to the pool (two thread
    // wake-ups, milliseconds on a busy host): they are preprocessed here. Large bodies, a
    // request's own chat_template (any Jinja), a request hook that may block (a classifier) and an
    // output constraint (compiling a schema against a 128k vocabulary can take 100 ms) go to the
    // pool.
    const bool cheap = req.body.size() <= kInlineBodyBytes && !hook_blocks_ &&
                       req.body.find("\"chat_template\"") == std::string::npos &&
                       !may_constrain(req.body);
    // The server span starts before the hook, whose spans (semantic routing) are its children.
    trace::Span span = tracer_->start_span(std::string(protocol.route()), trace::SpanKind::kServer,
                                           incoming_trace(req));
    const trace::TraceContext span_context = span.context();
    // (No co_await inside a conditional expression: GCC 12 miscompiles its temporaries.)
    std::optional<Result<Staged>> staged;
    if (cheap) {
      staged.emplace(stage(protocol, req, span_context));
    } else {
      Result<Staged> pooled =
          co_await pool_.run<Staged>([&] { return stage(protocol, req, span_context); });
      staged.emplace(std::move(pooled));
    }
    if (!staged->has_value()) {
      span.set_error(staged->status().message());
      co_return co_await send_error(metrics_, protocol, w, staged->status());
    }
    Staged& s = **staged;
    if (s.raw) {
      span.set_attribute("turbine.answered_by", std::string("hook"));
      http::Headers headers = std::move(s.generation.headers);
      co_return co_await send_body(metrics_, w, s.raw->status, std::move(s.raw->body),
                                   std::move(headers), s.raw->content_type.c_str());
    }
    if (s.canned) {
      span.set_attribute("turbine.answered_by", std::string("hook"));
      co_return co_await send_canned(env_, protocol, s.generation.request, std::move(*s.canned),
                                     std::move(s.generation.headers), w);
    }
    s.generation.worker_instance_id = *instance;
    s.generation.parent = incoming_trace(req);
    s.generation.span.emplace(std::move(span));
    co_await run_generation(env_, std::move(s.generation), w);
  }

  // ---- Responses store and Anthropic token counting -----------------------------------------

  // GET /v1/responses/{id}: the stored response; DELETE: removes it. Unknown or expired ids
  // (and `store: false` responses) are 404 in the Responses error shape.
  asio::awaitable<void> handle_stored_response(const Request& req, ResponseWriter& w, bool erase) {
    if (Status st = authorize(req); !st.is_ok()) {
      co_return co_await send_error(metrics_, *responses_, w, st);
    }
    constexpr std::string_view kPrefix = "/v1/responses/";
    std::string id = percent_decode(
        std::string_view(req.target).substr(std::min(kPrefix.size(), req.target.size())));
    if (const size_t q = id.find('?'); q != std::string::npos) id.resize(q);
    if (erase) {
      if (!response_store_.erase(id)) {
        co_return co_await send_error(metrics_, *responses_, w, api::response_not_found(id));
      }
      co_return co_await reply(w, 200, api::response_deleted_json(id));
    }
    const std::shared_ptr<const api::StoredResponse> stored = response_store_.get(id);
    if (!stored) {
      co_return co_await send_error(metrics_, *responses_, w, api::response_not_found(id));
    }
    co_await reply(w, 200, stored->response_json);
  }

  // POST /v1/messages/count_tokens: the prompt's tokens as /v1/messages would render them.
  asio::awaitable<void> handle_count_tokens(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) {
      co_return co_await send_error(metrics_, *messages_, w, st);
    }
    auto body = co_await pool_.run<std::string>([&]() -> Result<std::string> {
      TURBINE_ASSIGN_OR_RETURN(api::ChatRequest r,
                               api::parse_anthropic_count_tokens_request(req.body));
      TURBINE_ASSIGN_OR_RETURN(ModelPtr m, registry_.find(r.model));
      TURBINE_ASSIGN_OR_RETURN(api::ChatTemplateFields fields,
                               Preprocessor::with_reasoning_kwargs(r));
      TURBINE_ASSIGN_OR_RETURN(RenderedPrompt prompt,
                               m->chat_prompt.render(r.messages, r.add_generation_prompt, fields));
      TURBINE_RETURN_IF_ERROR(
          Preprocessor::check_text_bound(prompt.text.size(), *m, true, "messages"));
      const auto ids = m->tokenizer->encode(prompt.text, prompt.add_special_tokens);
      return api::anthropic_count_tokens_response(static_cast<int64_t>(ids.size()));
    });
    if (!body) co_return co_await send_error(metrics_, *messages_, w, body.status());
    co_await reply(w, 200, std::move(*body));
  }

  // ---- other routes --------------------------------------------------------------------------

  asio::awaitable<void> handle_health(const Request&, ResponseWriter& w) {
    if (!health_source_) {
      if (draining_) {
        co_await reply(w, 503, R"({"status":"unhealthy","message":"shutting down"})");
      } else {
        co_await reply(w, 200, R"({"status":"healthy"})");
      }
      co_return;
    }
    const std::vector<HealthInstance> instances = health_source_();
    const bool healthy = !draining_ && !instances.empty();
    boost::json::object o;
    o["status"] = healthy ? "healthy" : "unhealthy";
    if (draining_) o["message"] = "shutting down";
    boost::json::array arr;
    for (const HealthInstance& i : instances) {
      arr.push_back(boost::json::object{{"namespace", i.ns},
                                        {"component", i.component},
                                        {"endpoint", i.endpoint},
                                        {"instance_id", i.instance_id}});
    }
    o["instances"] = std::move(arr);
    co_await reply(w, healthy ? 200 : 503, boost::json::serialize(o));
  }

  asio::awaitable<void> handle_live(const Request&, ResponseWriter& w) {
    co_await reply(w, 200, R"({"status":"live","message":"Service is live"})");
  }

  asio::awaitable<void> handle_metrics(const Request&, ResponseWriter& w) {
    for (const ModelPtr& m : registry_.models()) {
      if (m->engine) metrics_.model(m->name).observe_engine(m->engine->stats());
    }
    metrics_.uptime.Set(seconds_since(start_time_));
    std::string body = metrics_.serialize();
    if (options_.extra_metrics) body += options_.extra_metrics();
    co_await reply(w, 200, body, "text/plain; version=0.0.4; charset=utf-8");
  }

  asio::awaitable<void> handle_models(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) co_return co_await reply_error(w, st);
    std::vector<api::ModelCard> cards;
    if (hook_->list_served_models()) {
      for (const ModelPtr& m : registry_.models()) cards.push_back(m->card());
    }
    for (const std::string& name : hook_->extra_model_names()) cards.push_back(hook_card(name));
    co_await reply(w, 200, api::models_response(cards));
  }

  // A hook's virtual model: its context is that of the longest served model (any may serve it).
  api::ModelCard hook_card(const std::string& name) const {
    api::ModelCard card{name, start_unix_, 0, "turbine"};
    for (const ModelPtr& m : registry_.models()) {
      card.max_model_len = std::max(card.max_model_len, m->max_context);
    }
    return card;
  }

  // GET /v1/models/{id}: an id that is not served is OpenAI's model_not_found (404).
  asio::awaitable<void> handle_model(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) co_return co_await reply_error(w, st);
    constexpr std::string_view kPrefix = "/v1/models/";
    const std::string id = percent_decode(
        std::string_view(req.target).substr(std::min(kPrefix.size(), req.target.size())));
    const std::vector<std::string> extra = hook_->extra_model_names();
    if (std::find(extra.begin(), extra.end(), id) != extra.end()) {
      co_return co_await reply(w, 200, api::model_response(hook_card(id)));
    }
    auto m = registry_.find_served(id);
    if (!m) co_return co_await reply_error(w, m.status());
    co_await reply(w, 200, api::model_response((*m)->card()));
  }

  // /tokenize: parse, template and tokenize on the pool, as generation requests do.
  asio::awaitable<void> handle_tokenize(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) co_return co_await reply_error(w, st);
    auto body = co_await pool_.run<std::string>([&]() -> Result<std::string> {
      TURBINE_ASSIGN_OR_RETURN(api::TokenizeRequest parsed, api::parse_tokenize_request(req.body));
      TURBINE_ASSIGN_OR_RETURN(ModelPtr m, registry_.find(parsed.model));
      if (m->encoder) return wrong_endpoint(*m, "/tokenize");
      std::vector<int32_t> ids;
      if (parsed.is_chat) {
        TURBINE_ASSIGN_OR_RETURN(
            RenderedPrompt prompt,
            m->chat_prompt.render(parsed.messages, parsed.add_generation_prompt,
                                  parsed.template_fields));
        ids = m->tokenizer->encode(prompt.text, prompt.add_special_tokens);
      } else {
        ids = m->tokenizer->encode(parsed.prompt, parsed.add_special_tokens);
      }
      return api::tokenize_response(ids, m->max_context);
    });
    if (!body) co_return co_await reply_error(w, body.status());
    co_await reply(w, 200, std::move(*body));
  }

  asio::awaitable<void> handle_detokenize(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) co_return co_await reply_error(w, st);
    auto body = co_await pool_.run<std::string>([&]() -> Result<std::string> {
      TURBINE_ASSIGN_OR_RETURN(api::DetokenizeRequest parsed,
                               api::parse_detokenize_request(req.body));
      TURBINE_ASSIGN_OR_RETURN(ModelPtr m, registry_.find(parsed.model));
      if (m->encoder) return wrong_endpoint(*m, "/detokenize");
      for (int32_t t : parsed.tokens) {
        if (t < 0 || t >= m->tokenizer->vocab_size()) {
          return invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary",
                                  "tokens");
        }
      }
      return api::detokenize_response(
          tokenizer::sanitize_utf8(m->tokenizer->decode(parsed.tokens, true)));
    });
    if (!body) co_return co_await reply_error(w, body.status());
    co_await reply(w, 200, std::move(*body));
  }

  const FrontendOptions options_;
  const std::shared_ptr<trace::Tracer> tracer_;
  const std::shared_ptr<RequestHook> hook_;
  const bool hook_blocks_ = options_.request_hook && hook_->blocking();
  mutable metrics::FrontendMetrics metrics_;
  ModelRegistry registry_;
  const Preprocessor preprocessor_;
  WorkPool pool_;
  const std::unique_ptr<ProtocolAdapter> chat_;
  const std::unique_ptr<ProtocolAdapter> completions_;
  api::ResponseStore response_store_;  // thread-safe; behind previous_response_id and GET/DELETE
  const std::unique_ptr<ProtocolAdapter> responses_;
  const std::unique_ptr<ProtocolAdapter> messages_;
  std::atomic<uint64_t> next_engine_id_{1};
  std::atomic<int> inflight_{0};
  const GenerationEnv env_;
  HealthSource health_source_;  // set before start(), read by handlers
  const Clock::time_point start_time_ = Clock::now();
  const int64_t start_unix_ = unix_now();
  std::unique_ptr<http::Server> server_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopped_{false};
};

}  // namespace

Status FrontendOptions::validate() const {
  if (http_threads < 1) return invalid_argument("--http-threads must be >= 1", "http_threads");
  if (preprocess_threads < 1) {
    return invalid_argument("preprocess_threads must be >= 1", "preprocess_threads");
  }
  if (max_body_bytes < 1024) return invalid_argument("the body limit is too small", "max_body");
  if (api_key && api_key->empty()) return invalid_argument("the API key is empty", "api_key");
  return Status::ok();
}

Result<std::unique_ptr<Frontend>> Frontend::create(FrontendOptions options) {
  TURBINE_RETURN_IF_ERROR(options.validate());
  // Without a served name, models announce themselves (add_model) and get their series then.
  std::string metrics_name = options.served_model_name;
  return std::unique_ptr<Frontend>(
      std::make_unique<FrontendImpl>(std::move(options), std::move(metrics_name)));
}

Result<std::unique_ptr<Frontend>> Frontend::create(FrontendOptions options,
                                                   std::shared_ptr<const model::Model> model,
                                                   std::unique_ptr<tokenizer::Tokenizer> tokenizer,
                                                   std::unique_ptr<engine::AsyncEngine> engine) {
  TURBINE_RETURN_IF_ERROR(options.validate());
  if (!model || !tokenizer || !engine) return internal_error("frontend created without a model");
  std::string name = options.served_model_name.empty() ? model->name() : options.served_model_name;
  auto front = std::make_unique<FrontendImpl>(std::move(options), name);
  auto info = std::make_shared<const model::ModelInfo>(model::model_info(*model));
  TURBINE_RETURN_IF_ERROR(front->add_model(
      {std::move(name), std::move(info), std::move(tokenizer), std::move(engine), {}}));
  return std::unique_ptr<Frontend>(std::move(front));
}

}  // namespace turbine::frontend
