#include "frontend/frontend.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include "api/errors.h"
#include "api/openai.h"
#include "frontend/chat_prompt.h"
#include "frontend/mailbox.h"
#include "frontend/playground.h"
#include "http/router.h"
#include "http/server.h"
#include "metrics/metrics.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/utf8.h"

namespace turbine::frontend {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using http::Request;
using http::ResponseWriter;

constexpr const char* kJson = "application/json";

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

api::FinishReason to_api(engine::FinishReason r) {
  switch (r) {
    case engine::FinishReason::kStop: return api::FinishReason::kStop;
    case engine::FinishReason::kLength: return api::FinishReason::kLength;
    case engine::FinishReason::kCancelled:
    case engine::FinishReason::kError: return api::FinishReason::kAbort;
    case engine::FinishReason::kNone: break;
  }
  return api::FinishReason::kNone;
}

enum class Kind { kCompletion, kChat };

// One prompt of a request and everything generated for it so far. Lives on the request's strand.
struct Choice {
  int index = 0;
  uint64_t engine_id = 0;
  uint64_t worker_instance_id = 0;  // x-worker-instance-id; 0: the router chooses
  std::vector<int32_t> prompt;
  std::string echo;  // completions with echo: the prompt text, sent before the completion
  std::optional<tokenizer::IncrementalDetokenizer> detok;
  std::string text;                         // unary: the whole completion
  std::vector<api::TokenLogprob> logprobs;  // unary: all; streaming: since the last chunk
  size_t text_offset = 0;                   // completions logprobs: bytes already sent
  int completion_tokens = 0;
  int cached_tokens = 0;  // prompt tokens the engine took from its prefix cache
  api::FinishReason finish = api::FinishReason::kNone;
  bool engine_done = false;  // the engine sent its final output for this choice
  bool error = false;
  Status error_status;
};

// A served model as requests see it: immutable, shared by the requests that started on it.
struct ModelEntry {
  ModelEntry(ServedModel m)
      : name(std::move(m.name)),
        info(std::move(m.info)),
        tokenizer(std::move(m.tokenizer)),
        engine(std::move(m.engine)),
        max_context(engine->max_context()),
        chat_prompt(make_chat_prompt(info->vocab, *tokenizer)),
        created(unix_now()) {}
  const std::string name;
  const std::shared_ptr<const model::ModelInfo> info;
  const std::shared_ptr<tokenizer::Tokenizer> tokenizer;
  const std::shared_ptr<engine::AsyncEngine> engine;
  const int64_t max_context;
  const ChatPrompt chat_prompt;
  const int64_t created;
  api::ModelCard card() const { return {name, created, max_context, "turbine"}; }
};
using ModelPtr = std::shared_ptr<const ModelEntry>;

class FrontendImpl final : public Frontend {
 public:
  FrontendImpl(FrontendOptions options, std::string metrics_name)
      : options_(std::move(options)),
        tracer_(options_.tracer ? options_.tracer : std::make_shared<trace::Tracer>()),
        metrics_(std::move(metrics_name)) {}

  Status add_model(ServedModel m) override {
    if (m.name.empty() || !m.info || !m.tokenizer || !m.engine) {
      return internal_error("a served model needs a name, model info, tokenizer and engine");
    }
    auto entry = std::make_shared<const ModelEntry>(std::move(m));
    metrics::ModelMetrics& mm = metrics_.model(entry->name);
    mm.context_length.Set(static_cast<double>(entry->max_context));
    mm.max_num_seqs.Set(entry->engine->num_slots());
    std::lock_guard lock(models_mu_);
    if (first_model_.empty()) first_model_ = entry->name;
    models_[entry->name] = std::move(entry);
    return Status::ok();
  }

  void remove_model(const std::string& name) override {
    std::lock_guard lock(models_mu_);
    models_.erase(name);
  }

  std::vector<std::string> model_names() const override {
    std::lock_guard lock(models_mu_);
    std::vector<std::string> out;
    for (const auto& [name, m] : models_) out.push_back(name);
    return out;
  }

  void set_health_source(HealthSource source) override { health_source_ = std::move(source); }

  ~FrontendImpl() override { shutdown(std::chrono::milliseconds(0)); }

  Status start() override {
    http::Router router;
    router.set_error_body(
        [](int status, std::string_view message) {
          return api::error_json_for_http(status, message);
        },
        kJson);
    add(router, "POST", "/v1/completions", &FrontendImpl::handle_completions);
    add(router, "POST", "/v1/chat/completions", &FrontendImpl::handle_chat);
    add(router, "GET", "/v1/models", &FrontendImpl::handle_models);
    for (const std::string& name : model_names()) {
      add(router, "GET", "/v1/models/" + name, &FrontendImpl::handle_model);
    }
    add(router, "POST", "/tokenize", &FrontendImpl::handle_tokenize);
    add(router, "POST", "/detokenize", &FrontendImpl::handle_detokenize);
    add(router, "GET", "/health", &FrontendImpl::handle_health);
    add(router, "GET", "/live", &FrontendImpl::handle_live);
    add(router, "GET", "/metrics", &FrontendImpl::handle_metrics);
    if (options_.ui) router.add("GET", "/", playground_handler());

    http::ServerOptions sopts;
    sopts.host = options_.host;
    sopts.port = options_.port;
    sopts.n_threads = options_.http_threads;
    sopts.max_body_bytes = options_.max_body_bytes;
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
    std::vector<ModelPtr> models;
    {
      std::lock_guard lock(models_mu_);
      for (const auto& [name, m] : models_) models.push_back(m);
    }
    for (const ModelPtr& m : models) {
      m->engine->shutdown();  // cancels what is left; handlers then finish with "abort"
    }
    const auto flush_deadline = Clock::now() + std::chrono::seconds(2);
    while (inflight_.load() > 0 && Clock::now() < flush_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (server_) server_->stop();
  }

 private:
  using Method = asio::awaitable<void> (FrontendImpl::*)(const Request&, ResponseWriter&);

  void add(http::Router& router, std::string method, std::string path, Method m) {
    router.add(std::move(method), std::move(path),
               [this, m](const Request& req, ResponseWriter& w) { return (this->*m)(req, w); });
  }

  // ---- responses ---------------------------------------------------------------------------

  asio::awaitable<void> reply(ResponseWriter& w, int status, std::string body,
                              const char* content_type = kJson) {
    metrics_.http_response(status);
    co_await w.send(status, content_type, std::move(body));
  }

  asio::awaitable<void> reply_error(ResponseWriter& w, const Status& st) {
    if (st.code() == StatusCode::kInternal) spdlog::error("request failed: {}", st.to_string());
    co_await reply(w, api::http_status(st.code()), api::error_json(st));
  }

  // Bearer-token check for the API routes; /health, /live and /metrics stay open.
  Status authorize(const Request& req) const {
    if (!options_.api_key) return Status::ok();
    std::string_view auth = req.header("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (auth.size() > kBearer.size() && auth.substr(0, kBearer.size()) == kBearer &&
        auth.substr(kBearer.size()) == *options_.api_key) {
      return Status::ok();
    }
    return {StatusCode::kUnauthenticated,
            "Incorrect API key provided. Send it as `Authorization: Bearer <key>`."};
  }

  // The model a request names; an empty name means the only (or first) model, for /tokenize.
  Result<ModelPtr> find_model(const std::string& name) const {
    std::lock_guard lock(models_mu_);
    auto it = models_.find(name.empty() ? first_model_ : name);
    if (it == models_.end() && name.empty() && !models_.empty()) it = models_.begin();
    if (it != models_.end()) return it->second;
    return not_found("The model `" + name + "` does not exist.", "model");
  }

  ModelPtr default_model() const {
    auto m = find_model("");
    return m ? *m : nullptr;
  }

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

  // ---- simple routes -----------------------------------------------------------------------

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
    std::vector<ModelPtr> models;
    {
      std::lock_guard lock(models_mu_);
      for (const auto& [name, m] : models_) models.push_back(m);
    }
    for (const ModelPtr& m : models) metrics_.model(m->name).observe_engine(m->engine->stats());
    metrics_.uptime.Set(seconds_since(start_time_));
    std::string body = metrics_.serialize();
    if (options_.extra_metrics) body += options_.extra_metrics();
    co_await reply(w, 200, body, "text/plain; version=0.0.4; charset=utf-8");
  }

  asio::awaitable<void> handle_models(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) co_return co_await reply_error(w, st);
    std::vector<api::ModelCard> cards;
    {
      std::lock_guard lock(models_mu_);
      for (const auto& [name, m] : models_) cards.push_back(m->card());
    }
    co_await reply(w, 200, api::models_response(cards));
  }

  asio::awaitable<void> handle_model(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) co_return co_await reply_error(w, st);
    const std::string_view prefix = "/v1/models/";
    auto m = find_model(std::string(req.target.substr(std::min(prefix.size(), req.target.size()))));
    if (!m) co_return co_await reply_error(w, m.status());
    co_await reply(w, 200, api::model_response((*m)->card()));
  }

  asio::awaitable<void> handle_tokenize(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) co_return co_await reply_error(w, st);
    auto parsed = api::parse_tokenize_request(req.body);
    if (!parsed) co_return co_await reply_error(w, parsed.status());
    auto found = find_model(parsed->model);
    if (!found) co_return co_await reply_error(w, found.status());
    const ModelEntry& m = **found;
    std::vector<int32_t> ids;
    if (parsed->is_chat) {
      auto prompt = m.chat_prompt.render(parsed->messages, parsed->add_generation_prompt,
                                         parsed->template_fields);
      if (!prompt) co_return co_await reply_error(w, prompt.status());
      ids = m.tokenizer->encode(prompt->text, prompt->add_special_tokens);
    } else {
      ids = m.tokenizer->encode(parsed->prompt, parsed->add_special_tokens);
    }
    co_await reply(w, 200, api::tokenize_response(ids, m.max_context));
  }

  asio::awaitable<void> handle_detokenize(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) co_return co_await reply_error(w, st);
    auto parsed = api::parse_detokenize_request(req.body);
    if (!parsed) co_return co_await reply_error(w, parsed.status());
    auto found = find_model(parsed->model);
    if (!found) co_return co_await reply_error(w, found.status());
    const ModelEntry& m = **found;
    for (int32_t t : parsed->tokens) {
      if (t < 0 || t >= m.tokenizer->vocab_size()) {
        co_return co_await reply_error(
            w, invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary",
                                "tokens"));
      }
    }
    const std::string text = tokenizer::sanitize_utf8(m.tokenizer->decode(parsed->tokens, true));
    co_await reply(w, 200, api::detokenize_response(text));
  }

  // ---- generation --------------------------------------------------------------------------

  asio::awaitable<void> handle_completions(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) co_return co_await reply_error(w, st);
    if (Status st = check_accepting(); !st.is_ok()) co_return co_await reply_error(w, st);
    auto parsed = api::parse_completion_request(req.body);
    if (!parsed) co_return co_await reply_error(w, parsed.status());
    auto found = find_model(parsed->model);
    if (!found) co_return co_await reply_error(w, found.status());
    const ModelPtr m = *found;
    auto instance = worker_instance_id(req);
    if (!instance) co_return co_await reply_error(w, instance.status());

    std::vector<Choice> choices(parsed->prompts.size());
    for (size_t i = 0; i < parsed->prompts.size(); ++i) {
      const api::PromptInput& p = parsed->prompts[i];
      Choice& c = choices[i];
      c.worker_instance_id = *instance;
      c.index = static_cast<int>(i);
      if (p.is_tokens) {
        c.prompt = p.tokens;
        if (parsed->sampling.echo) {
          c.echo = tokenizer::sanitize_utf8(m->tokenizer->decode(p.tokens, true));
        }
      } else {
        c.prompt = m->tokenizer->encode(p.text, /*add_special=*/true);
        if (parsed->sampling.echo) c.echo = p.text;
      }
    }
    co_await generate(w, incoming_trace(req), m, Kind::kCompletion, std::move(choices),
                      parsed->sampling, "prompt");
  }

  asio::awaitable<void> handle_chat(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) co_return co_await reply_error(w, st);
    if (Status st = check_accepting(); !st.is_ok()) co_return co_await reply_error(w, st);
    auto parsed = api::parse_chat_request(req.body);
    if (!parsed) co_return co_await reply_error(w, parsed.status());
    auto found = find_model(parsed->model);
    if (!found) co_return co_await reply_error(w, found.status());
    const ModelPtr m = *found;
    auto prompt = m->chat_prompt.render(parsed->messages, parsed->add_generation_prompt,
                                        parsed->template_fields);
    if (!prompt) co_return co_await reply_error(w, prompt.status());
    auto instance = worker_instance_id(req);
    if (!instance) co_return co_await reply_error(w, instance.status());
    std::vector<Choice> choices(1);
    choices[0].worker_instance_id = *instance;
    choices[0].prompt = m->tokenizer->encode(prompt->text, prompt->add_special_tokens);
    co_await generate(w, incoming_trace(req), m, Kind::kChat, std::move(choices), parsed->sampling,
                      "messages");
  }

  // Checks lengths and builds the engine's parameters for one prompt.
  Result<engine::SamplingParams> engine_params(const api::SamplingOptions& s, Kind kind,
                                               size_t prompt_len, const char* prompt_field,
                                               int64_t max_context) const {
    const auto n = static_cast<int64_t>(prompt_len);
    if (n == 0) return invalid_argument("the prompt is empty", prompt_field);
    if (n >= max_context) {
      return invalid_argument("This model's maximum context length is " +
                                  std::to_string(max_context) + " tokens. However, your " +
                                  (kind == Kind::kChat ? "messages resulted in " : "prompt has ") +
                                  std::to_string(n) + " tokens. Please reduce the length of the " +
                                  (kind == Kind::kChat ? "messages." : "prompt."),
                              prompt_field);
    }
    engine::SamplingParams p;
    const int64_t room = max_context - n;
    if (s.max_tokens) {
      if (*s.max_tokens > room) {
        return invalid_argument(
            "This model's maximum context length is " + std::to_string(max_context) +
                " tokens. However, you requested " + std::to_string(n + *s.max_tokens) +
                " tokens (" + std::to_string(n) + " in the " +
                (kind == Kind::kChat ? "messages" : "prompt") + ", " +
                std::to_string(*s.max_tokens) +
                " in the completion). Please reduce the length of the " +
                (kind == Kind::kChat ? "messages" : "prompt") + " or completion.",
            "max_tokens");
      }
      p.max_tokens = *s.max_tokens;
    } else if (kind == Kind::kCompletion) {
      p.max_tokens =
          static_cast<int>(std::min<int64_t>(options_.default_completion_max_tokens, room));
    } else {
      p.max_tokens = static_cast<int>(room);
    }
    p.temperature = s.temperature;
    p.top_p = s.top_p;
    p.top_k = s.top_k;
    p.min_p = s.min_p;
    p.seed = s.seed;
    p.presence_penalty = s.presence_penalty;
    p.frequency_penalty = s.frequency_penalty;
    p.repetition_penalty = s.repetition_penalty;
    p.ignore_eos = s.ignore_eos;
    p.stop_token_ids = s.stop_token_ids;
    p.n_logprobs = s.logprobs ? *s.logprobs : -1;
    TURBINE_RETURN_IF_ERROR(p.validate());
    return p;
  }

  static api::TokenLogprob token_logprob(const tokenizer::Tokenizer& tok,
                                         const engine::SampledToken& t) {
    api::TokenLogprob lp;
    lp.token = tokenizer::sanitize_utf8(tok.token_bytes(t.token));
    lp.logprob = t.logprob;
    for (const auto& [id, v] : t.top_logprobs) {
      lp.top.push_back({tokenizer::sanitize_utf8(tok.token_bytes(id)), v});
    }
    return lp;
  }

  // Runs every choice through the engine and answers, unary or streaming.
  asio::awaitable<void> generate(ResponseWriter& w, const trace::TraceContext& parent,
                                 ModelPtr model, Kind kind, std::vector<Choice> choices,
                                 const api::SamplingOptions& sampling, const char* prompt_field) {
    engine::AsyncEngine& engine = *model->engine;
    // The server span of this request; ends when this coroutine returns, whatever the path.
    trace::Span span = tracer_->start_span(
        kind == Kind::kChat ? "POST /v1/chat/completions" : "POST /v1/completions",
        trace::SpanKind::kServer, parent);
    span.set_attribute("gen_ai.request.model", model->name);
    span.set_attribute("turbine.stream", sampling.stream);
    metrics::ModelMetrics& mm = metrics_.model(model->name);
    const tokenizer::Tokenizer& tok = *model->tokenizer;
    const char* endpoint = kind == Kind::kChat ? "chat_completions" : "completions";
    const auto type =
        sampling.stream ? metrics::RequestType::kStream : metrics::RequestType::kUnary;
    std::vector<engine::SamplingParams> params;
    for (const Choice& c : choices) {
      auto p = engine_params(sampling, kind, c.prompt.size(), prompt_field, model->max_context);
      if (!p) {
        mm.request_done(endpoint, type, metrics::RequestStatus::kError);
        co_return co_await reply_error(w, p.status());
      }
      params.push_back(std::move(*p));
    }

    // From here on the request counts as in flight until this coroutine returns.
    struct InflightGuard {
      FrontendImpl* self;
      metrics::ModelMetrics& mm;
      InflightGuard(FrontendImpl* s, metrics::ModelMetrics& m) : self(s), mm(m) {
        self->inflight_++;
        mm.inflight.Increment();
      }
      ~InflightGuard() {
        mm.inflight.Decrement();
        self->inflight_--;
      }
    } guard(this, mm);

    const auto t_start = Clock::now();
    auto strand = co_await asio::this_coro::executor;
    auto mailbox = std::make_shared<Mailbox>(strand);
    size_t submitted = 0;
    Status submit_error;
    for (size_t i = 0; i < choices.size(); ++i) {
      Choice& c = choices[i];
      c.engine_id = next_engine_id_.fetch_add(1);
      c.detok.emplace(tok, c.prompt.back(), sampling.stop, /*skip_special=*/true);
      engine::EngineRequest er;
      er.id = c.engine_id;
      er.prompt = c.prompt;
      er.params = params[i];
      er.routing.instance_id = c.worker_instance_id;
      er.trace = span.context();
      er.on_output = [mailbox, index = c.index](engine::EngineOutput&& out) {
        mailbox->deliver(index, std::move(out));
      };
      submit_error = engine.submit(std::move(er));
      if (!submit_error.is_ok()) break;
      ++submitted;
    }
    if (!submit_error.is_ok()) {
      for (size_t i = 0; i < submitted; ++i) engine.cancel(choices[i].engine_id);
      mm.request_done(endpoint, type, metrics::RequestStatus::kError);
      span.set_error(submit_error.message());
      co_return co_await reply_error(w, submit_error);
    }
    mm.queued.Increment();
    bool queued = true;
    w.on_disconnect([mailbox] { mailbox->close(); });

    const api::ResponseMeta meta{api::make_request_id(kind == Kind::kChat ? "chatcmpl" : "cmpl"),
                                 unix_now(), model->name};
    bool client_ok = true;
    if (sampling.stream) {
      client_ok = co_await w.start_stream(200, "text/event-stream");
      metrics_.http_response(200);
      for (Choice& c : choices) {
        if (!client_ok) break;
        if (kind == Kind::kChat) {
          client_ok = co_await w.write_chunk(api::sse_event(api::chat_role_chunk(meta, c.index)));
        } else if (!c.echo.empty()) {
          api::CompletionChoice cc;
          cc.index = c.index;
          cc.text = c.echo;
          client_ok = co_await w.write_chunk(api::sse_event(api::completion_chunk(meta, cc)));
        }
      }
    }

    size_t open = choices.size();
    std::optional<Clock::time_point> last_token_at;
    std::string frame;  // reused SSE buffer
    while (open > 0 && client_ok) {
      std::deque<MailItem> items = co_await mailbox->next();
      if (items.empty()) {  // closed: the client went away
        client_ok = false;
        break;
      }
      frame.clear();
      for (MailItem& item : items) {
        Choice& c = choices[static_cast<size_t>(item.index)];
        if (c.engine_done) continue;  // outputs racing a stop-string cancel
        engine::EngineOutput& out = item.output;
        c.cached_tokens = out.cached_tokens;
        std::string delta;
        if (!out.tokens.empty()) {
          const auto now = Clock::now();
          if (!last_token_at) {
            mm.time_to_first_token.Observe(std::chrono::duration<double>(now - t_start).count());
            if (queued) {
              mm.queued.Decrement();
              queued = false;
            }
          } else {
            mm.inter_token_latency.Observe(
                std::chrono::duration<double>(now - *last_token_at).count() /
                static_cast<double>(out.tokens.size()));
          }
          last_token_at = now;
        }
        for (size_t k = 0; k < out.tokens.size() && c.finish == api::FinishReason::kNone; ++k) {
          const engine::SampledToken& t = out.tokens[k];
          c.completion_tokens++;
          const bool is_stop_token =
              out.finish == engine::FinishReason::kStop && k + 1 == out.tokens.size();
          if (sampling.logprobs) c.logprobs.push_back(token_logprob(tok, t));
          if (is_stop_token) continue;  // EOS / stop_token_ids add no text
          auto d = c.detok->push(t.token);
          delta += d.text;
          if (d.stopped) {
            c.finish = api::FinishReason::kStop;
            engine.cancel(c.engine_id);
            c.engine_done = true;
          }
        }
        if (out.finish != engine::FinishReason::kNone && !c.engine_done) {
          c.engine_done = true;
          if (out.finish == engine::FinishReason::kError) {
            c.error = true;
            c.error_status = out.error;
          }
          if (c.finish == api::FinishReason::kNone) {
            delta += c.detok->flush();
            c.finish = c.detok->stopped() ? api::FinishReason::kStop : to_api(out.finish);
          }
        }
        if (c.engine_done) --open;
        if (sampling.stream) {
          append_stream_delta(frame, meta, kind, c, delta);
        } else {
          c.text += delta;
        }
      }
      if (sampling.stream && !frame.empty()) client_ok = co_await w.write_chunk(frame);
    }
    if (queued) mm.queued.Decrement();

    api::Usage usage;
    for (const Choice& c : choices) {
      usage.prompt_tokens += static_cast<int64_t>(c.prompt.size());
      usage.completion_tokens += c.completion_tokens;
      usage.cached_tokens = usage.cached_tokens.value_or(0) + c.cached_tokens;
    }
    const double elapsed = seconds_since(t_start);
    span.set_attribute("gen_ai.usage.input_tokens", static_cast<int64_t>(usage.prompt_tokens));
    span.set_attribute("gen_ai.usage.output_tokens", static_cast<int64_t>(usage.completion_tokens));
    span.set_attribute("turbine.cached_tokens",
                       static_cast<int64_t>(usage.cached_tokens.value_or(0)));

    if (!client_ok || w.client_gone()) {
      span.set_attribute("turbine.client_disconnected", true);
      for (Choice& c : choices) {
        if (!c.engine_done) engine.cancel(c.engine_id);
      }
      mm.disconnected_clients.Increment();
      mm.request_done(endpoint, type, metrics::RequestStatus::kCancelled);
      spdlog::debug("{}: client went away after {:.3f} s", meta.id, elapsed);
      co_return;
    }

    mm.request_duration.Observe(elapsed);
    mm.input_tokens.Observe(static_cast<double>(usage.prompt_tokens));
    mm.output_tokens.Observe(static_cast<double>(usage.completion_tokens));
    mm.output_tokens_total.Increment(static_cast<double>(usage.completion_tokens));

    const auto failed =
        std::find_if(choices.begin(), choices.end(), [](const Choice& c) { return c.error; });
    if (failed != choices.end()) span.set_error(failed->error_status.message());
    if (sampling.stream) {
      frame.clear();
      if (sampling.include_usage) {
        frame += api::sse_event(kind == Kind::kChat ? api::chat_usage_chunk(meta, usage)
                                                    : api::completion_usage_chunk(meta, usage));
      }
      frame += api::kSseDone;
      co_await w.write_chunk(frame);
      co_await w.end_stream();
      mm.request_done(endpoint, type,
                      failed == choices.end() ? metrics::RequestStatus::kSuccess
                                              : metrics::RequestStatus::kError);
      co_return;
    }
    if (failed != choices.end()) {
      mm.request_done(endpoint, type, metrics::RequestStatus::kError);
      co_return co_await reply_error(
          w, internal_error("generation failed: " + failed->error_status.message()));
    }
    std::string body;
    if (kind == Kind::kChat) {
      std::vector<api::ChatChoice> out;
      for (const Choice& c : choices) {
        api::ChatChoice cc;
        cc.index = c.index;
        cc.content = c.text;
        cc.finish_reason = c.finish;
        cc.has_logprobs = sampling.logprobs.has_value();
        cc.logprobs = c.logprobs;
        out.push_back(cc);
      }
      body = api::chat_response(meta, out, usage);
    } else {
      std::vector<std::string> texts;
      texts.reserve(choices.size());
      for (const Choice& c : choices) texts.push_back(c.echo + c.text);
      std::vector<api::CompletionChoice> out;
      for (size_t i = 0; i < choices.size(); ++i) {
        const Choice& c = choices[i];
        api::CompletionChoice cc;
        cc.index = c.index;
        cc.text = texts[i];
        cc.finish_reason = c.finish;
        cc.has_logprobs = sampling.logprobs.has_value();
        cc.logprobs = c.logprobs;
        cc.text_offset_start = c.echo.size();
        out.push_back(cc);
      }
      body = api::completion_response(meta, out, usage);
    }
    mm.request_done(endpoint, type, metrics::RequestStatus::kSuccess);
    co_await reply(w, 200, std::move(body));
  }

  // Appends the SSE event(s) for one choice's new text (and its finish, if it just finished).
  void append_stream_delta(std::string& frame, const api::ResponseMeta& meta, Kind kind, Choice& c,
                           const std::string& delta) const {
    const bool finished = c.engine_done;
    if (delta.empty() && c.logprobs.empty() && !finished) return;
    if (kind == Kind::kChat) {
      if (!delta.empty() || !c.logprobs.empty()) {
        api::ChatChoice cc;
        cc.index = c.index;
        cc.content = delta;
        cc.has_logprobs = !c.logprobs.empty();
        cc.logprobs = c.logprobs;
        frame += api::sse_event(api::chat_chunk(meta, cc));
      }
      if (finished) {
        api::ChatChoice fin;
        fin.index = c.index;
        fin.finish_reason = c.finish;
        frame += api::sse_event(api::chat_chunk(meta, fin));
      }
    } else {
      api::CompletionChoice cc;
      cc.index = c.index;
      cc.text = delta;
      cc.finish_reason = finished ? c.finish : api::FinishReason::kNone;
      cc.has_logprobs = !c.logprobs.empty();
      cc.logprobs = c.logprobs;
      cc.text_offset_start = c.echo.size() + c.text_offset;
      frame += api::sse_event(api::completion_chunk(meta, cc));
      c.text_offset += delta.size();
    }
    c.logprobs.clear();
  }

  const FrontendOptions options_;
  const std::shared_ptr<trace::Tracer> tracer_;
  metrics::FrontendMetrics metrics_;
  mutable std::mutex models_mu_;  // guards models_ and first_model_
  std::map<std::string, ModelPtr> models_;
  std::string first_model_;
  HealthSource health_source_;  // set before start(), read by handlers
  const Clock::time_point start_time_ = Clock::now();
  std::unique_ptr<http::Server> server_;
  std::atomic<uint64_t> next_engine_id_{1};
  std::atomic<int> inflight_{0};
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopped_{false};
};

}  // namespace

Status FrontendOptions::validate() const {
  if (http_threads < 1) return invalid_argument("--http-threads must be >= 1", "http_threads");
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
      {std::move(name), std::move(info), std::move(tokenizer), std::move(engine)}));
  return std::unique_ptr<Frontend>(std::move(front));
}

}  // namespace turbine::frontend
