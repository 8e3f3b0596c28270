#include "frontend/frontend.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/asio/this_coro.hpp>

#include "api/errors.h"
#include "api/openai.h"
#include "frontend/chat_prompt.h"
#include "frontend/mailbox.h"
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

class FrontendImpl final : public Frontend {
 public:
  FrontendImpl(FrontendOptions options, std::shared_ptr<const model::Model> model,
               std::unique_ptr<tokenizer::Tokenizer> tokenizer,
               std::unique_ptr<engine::AsyncEngine> engine)
      : options_(std::move(options)),
        model_(std::move(model)),
        tokenizer_(std::move(tokenizer)),
        engine_(std::move(engine)),
        served_name_(options_.served_model_name.empty() ? model_->name()
                                                        : options_.served_model_name),
        max_context_(engine_->max_context()),
        metrics_(served_name_),
        chat_prompt_(make_chat_prompt(model_->vocab(), *tokenizer_)),
        created_(unix_now()) {
    metrics_.context_length.Set(max_context_);
    metrics_.max_num_seqs.Set(engine_->num_slots());
  }

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
    add(router, "GET", "/v1/models/" + served_name_, &FrontendImpl::handle_model);
    add(router, "POST", "/tokenize", &FrontendImpl::handle_tokenize);
    add(router, "POST", "/detokenize", &FrontendImpl::handle_detokenize);
    add(router, "GET", "/health", &FrontendImpl::handle_health);
    add(router, "GET", "/live", &FrontendImpl::handle_live);
    add(router, "GET", "/metrics", &FrontendImpl::handle_metrics);

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
    engine_->shutdown();  // cancels what is left; handlers then finish with "abort"
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

  Status check_model(const std::string& name) const {
    if (name == served_name_) return Status::ok();
    return not_found("The model `" + name + "` does not exist.", "model");
  }

  Status check_accepting() const {
    if (draining_) return {StatusCode::kUnavailable, "the server is shutting down"};
    return Status::ok();
  }

  // ---- simple routes -----------------------------------------------------------------------

  asio::awaitable<void> handle_health(const Request&, ResponseWriter& w) {
    if (draining_) {
      co_await reply(w, 503, R"({"status":"unhealthy","message":"shutting down"})");
    } else {
      co_await reply(w, 200, R"({"status":"healthy"})");
    }
  }

  asio::awaitable<void> handle_live(const Request&, ResponseWriter& w) {
    co_await reply(w, 200, R"({"status":"live","message":"Service is live"})");
  }

  asio::awaitable<void> handle_metrics(const Request&, ResponseWriter& w) {
    const engine::EngineStats s = engine_->stats();
    metrics_.engine_running.Set(s.running);
    metrics_.engine_waiting.Set(s.waiting);
    metrics_.engine_steps.Set(static_cast<double>(s.steps));
    metrics_.engine_cancelled.Set(static_cast<double>(s.cancelled));
    metrics_.kv_total_blocks.Set(s.kv_total_blocks);
    metrics_.kv_used_blocks.Set(s.kv_used_blocks);
    metrics_.prefix_queried_tokens.Set(static_cast<double>(s.prefix_cache_queried_tokens));
    metrics_.prefix_hit_tokens.Set(static_cast<double>(s.prefix_cache_hit_tokens));
    metrics_.prefix_hit_rate.Set(s.prefix_cache_queried_tokens == 0
                                     ? 0.0
                                     : static_cast<double>(s.prefix_cache_hit_tokens) /
                                           static_cast<double>(s.prefix_cache_queried_tokens));
    metrics_.preemptions.Set(static_cast<double>(s.preemptions));
    metrics_.step_batch_size.Set(s.last_step_batch_size);
    metrics_.step_tokens.Set(s.last_step_tokens);
    metrics_.step_seconds.Set(s.last_step_seconds);
    metrics_.uptime.Set(seconds_since(start_time_));
    co_await reply(w, 200, metrics_.serialize(), "text/plain; version=0.0.4; charset=utf-8");
  }

  api::ModelCard card() const { return {served_name_, created_, max_context_, "turbine"}; }

  asio::awaitable<void> handle_models(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) co_return co_await reply_error(w, st);
    const api::ModelCard cards[] = {card()};
    co_await reply(w, 200, api::models_response(cards));
  }

  asio::awaitable<void> handle_model(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) co_return co_await reply_error(w, st);
    co_await reply(w, 200, api::model_response(card()));
  }

  asio::awaitable<void> handle_tokenize(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) co_return co_await reply_error(w, st);
    auto parsed = api::parse_tokenize_request(req.body);
    if (!parsed) co_return co_await reply_error(w, parsed.status());
    if (!parsed->model.empty()) {
      if (Status st = check_model(parsed->model); !st.is_ok())
        co_return co_await reply_error(w, st);
    }
    std::vector<int32_t> ids;
    if (parsed->is_chat) {
      auto prompt = chat_prompt_.render(parsed->messages, parsed->add_generation_prompt,
                                        parsed->template_fields);
      if (!prompt) co_return co_await reply_error(w, prompt.status());
      ids = tokenizer_->encode(prompt->text, prompt->add_special_tokens);
    } else {
      ids = tokenizer_->encode(parsed->prompt, parsed->add_special_tokens);
    }
    co_await reply(w, 200, api::tokenize_response(ids, max_context_));
  }

  asio::awaitable<void> handle_detokenize(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) co_return co_await reply_error(w, st);
    auto parsed = api::parse_detokenize_request(req.body);
    if (!parsed) co_return co_await reply_error(w, parsed.status());
    if (!parsed->model.empty()) {
      if (Status st = check_model(parsed->model); !st.is_ok())
        co_return co_await reply_error(w, st);
    }
    for (int32_t t : parsed->tokens) {
      if (t < 0 || t >= tokenizer_->vocab_size()) {
        co_return co_await reply_error(
            w, invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary",
                                "tokens"));
      }
    }
    const std::string text = tokenizer::sanitize_utf8(tokenizer_->decode(parsed->tokens, true));
    co_await reply(w, 200, api::detokenize_response(text));
  }

  // ---- generation --------------------------------------------------------------------------

  asio::awaitable<void> handle_completions(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) co_return co_await reply_error(w, st);
    if (Status st = check_accepting(); !st.is_ok()) co_return co_await reply_error(w, st);
    auto parsed = api::parse_completion_request(req.body);
    if (!parsed) co_return co_await reply_error(w, parsed.status());
    if (Status st = check_model(parsed->model); !st.is_ok()) co_return co_await reply_error(w, st);

    std::vector<Choice> choices(parsed->prompts.size());
    for (size_t i = 0; i < parsed->prompts.size(); ++i) {
      const api::PromptInput& p = parsed->prompts[i];
      Choice& c = choices[i];
      c.index = static_cast<int>(i);
      if (p.is_tokens) {
        c.prompt = p.tokens;
        if (parsed->sampling.echo) {
          c.echo = tokenizer::sanitize_utf8(tokenizer_->decode(p.tokens, true));
        }
      } else {
        c.prompt = tokenizer_->encode(p.text, /*add_special=*/true);
        if (parsed->sampling.echo) c.echo = p.text;
      }
    }
    co_await generate(w, Kind::kCompletion, std::move(choices), parsed->sampling, "prompt");
  }

  asio::awaitable<void> handle_chat(const Request& req, ResponseWriter& w) {
    if (Status st = authorize(req); !st.is_ok()) co_return co_await reply_error(w, st);
    if (Status st = check_accepting(); !st.is_ok()) co_return co_await reply_error(w, st);
    auto parsed = api::parse_chat_request(req.body);
    if (!parsed) co_return co_await reply_error(w, parsed.status());
    if (Status st = check_model(parsed->model); !st.is_ok()) co_return co_await reply_error(w, st);
    auto prompt = chat_prompt_.render(parsed->messages, parsed->add_generation_prompt,
                                      parsed->template_fields);
    if (!prompt) co_return co_await reply_error(w, prompt.status());
    std::vector<Choice> choices(1);
    choices[0].prompt = tokenizer_->encode(prompt->text, prompt->add_special_tokens);
    co_await generate(w, Kind::kChat, std::move(choices), parsed->sampling, "messages");
  }

  // Checks lengths and builds the engine's parameters for one prompt.
  Result<engine::SamplingParams> engine_params(const api::SamplingOptions& s, Kind kind,
                                               size_t prompt_len, const char* prompt_field) const {
    const auto n = static_cast<int64_t>(prompt_len);
    if (n == 0) return invalid_argument("the prompt is empty", prompt_field);
    if (n >= max_context_) {
      return invalid_argument("This model's maximum context length is " +
                                  std::to_string(max_context_) + " tokens. However, your " +
                                  (kind == Kind::kChat ? "messages resulted in " : "prompt has ") +
                                  std::to_string(n) + " tokens. Please reduce the length of the " +
                                  (kind == Kind::kChat ? "messages." : "prompt."),
                              prompt_field);
    }
    engine::SamplingParams p;
    const int64_t room = max_context_ - n;
    if (s.max_tokens) {
      if (*s.max_tokens > room) {
        return invalid_argument(
            "This model's maximum context length is " + std::to_string(max_context_) +
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

  api::TokenLogprob token_logprob(const engine::SampledToken& t) const {
    api::TokenLogprob lp;
    lp.token = tokenizer::sanitize_utf8(tokenizer_->token_bytes(t.token));
    lp.logprob = t.logprob;
    for (const auto& [id, v] : t.top_logprobs) {
      lp.top.push_back({tokenizer::sanitize_utf8(tokenizer_->token_bytes(id)), v});
    }
    return lp;
  }

  // Runs every choice through the engine and answers, unary or streaming.
  asio::awaitable<void> generate(ResponseWriter& w, Kind kind, std::vector<Choice> choices,
                                 const api::SamplingOptions& sampling, const char* prompt_field) {
    const char* endpoint = kind == Kind::kChat ? "chat_completions" : "completions";
    const auto type =
        sampling.stream ? metrics::RequestType::kStream : metrics::RequestType::kUnary;
    std::vector<engine::SamplingParams> params;
    for (const Choice& c : choices) {
      auto p = engine_params(sampling, kind, c.prompt.size(), prompt_field);
      if (!p) {
        metrics_.request_done(endpoint, type, metrics::RequestStatus::kError);
        co_return co_await reply_error(w, p.status());
      }
      params.push_back(std::move(*p));
    }

    // From here on the request counts as in flight until this coroutine returns.
    struct InflightGuard {
      FrontendImpl* self;
      explicit InflightGuard(FrontendImpl* s) : self(s) {
        self->inflight_++;
        self->metrics_.inflight.Increment();
      }
      ~InflightGuard() {
        self->metrics_.inflight.Decrement();
        self->inflight_--;
      }
    } guard(this);

    const auto t_start = Clock::now();
    auto strand = co_await asio::this_coro::executor;
    auto mailbox = std::make_shared<Mailbox>(strand);
    size_t submitted = 0;
    Status submit_error;
    for (size_t i = 0; i < choices.size(); ++i) {
      Choice& c = choices[i];
      c.engine_id = next_engine_id_.fetch_add(1);
      c.detok.emplace(*tokenizer_, c.prompt.back(), sampling.stop, /*skip_special=*/true);
      engine::EngineRequest er;
      er.id = c.engine_id;
      er.prompt = c.prompt;
      er.params = params[i];
      er.on_output = [mailbox, index = c.index](engine::EngineOutput&& out) {
        mailbox->deliver(index, std::move(out));
      };
      submit_error = engine_->submit(std::move(er));
      if (!submit_error.is_ok()) break;
      ++submitted;
    }
    if (!submit_error.is_ok()) {
      for (size_t i = 0; i < submitted; ++i) engine_->cancel(choices[i].engine_id);
      metrics_.request_done(endpoint, type, metrics::RequestStatus::kError);
      co_return co_await reply_error(w, submit_error);
    }
    metrics_.queued.Increment();
    bool queued = true;
    w.on_disconnect([mailbox] { mailbox->close(); });

    const api::ResponseMeta meta{api::make_request_id(kind == Kind::kChat ? "chatcmpl" : "cmpl"),
                                 unix_now(), served_name_};
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
            metrics_.time_to_first_token.Observe(
                std::chrono::duration<double>(now - t_start).count());
            if (queued) {
              metrics_.queued.Decrement();
              queued = false;
            }
          } else {
            metrics_.inter_token_latency.Observe(
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
          if (sampling.logprobs) c.logprobs.push_back(token_logprob(t));
          if (is_stop_token) continue;  // EOS / stop_token_ids add no text
          auto d = c.detok->push(t.token);
          delta += d.text;
          if (d.stopped) {
            c.finish = api::FinishReason::kStop;
            engine_->cancel(c.engine_id);
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
    if (queued) metrics_.queued.Decrement();

    api::Usage usage;
    for (const Choice& c : choices) {
      usage.prompt_tokens += static_cast<int64_t>(c.prompt.size());
      usage.completion_tokens += c.completion_tokens;
      usage.cached_tokens = usage.cached_tokens.value_or(0) + c.cached_tokens;
    }
    const double elapsed = seconds_since(t_start);

    if (!client_ok || w.client_gone()) {
      for (Choice& c : choices) {
        if (!c.engine_done) engine_->cancel(c.engine_id);
      }
      metrics_.disconnected_clients.Increment();
      metrics_.request_done(endpoint, type, metrics::RequestStatus::kCancelled);
      spdlog::debug("{}: client went away after {:.3f} s", meta.id, elapsed);
      co_return;
    }

    metrics_.request_duration.Observe(elapsed);
    metrics_.input_tokens.Observe(static_cast<double>(usage.prompt_tokens));
    metrics_.output_tokens.Observe(static_cast<double>(usage.completion_tokens));
    metrics_.output_tokens_total.Increment(static_cast<double>(usage.completion_tokens));

    const auto failed =
        std::find_if(choices.begin(), choices.end(), [](const Choice& c) { return c.error; });
    if (sampling.stream) {
      frame.clear();
      if (sampling.include_usage) {
        frame += api::sse_event(kind == Kind::kChat ? api::chat_usage_chunk(meta, usage)
                                                    : api::completion_usage_chunk(meta, usage));
      }
      frame += api::kSseDone;
      co_await w.write_chunk(frame);
      co_await w.end_stream();
      metrics_.request_done(endpoint, type,
                            failed == choices.end() ? metrics::RequestStatus::kSuccess
                                                    : metrics::RequestStatus::kError);
      co_return;
    }
    if (failed != choices.end()) {
      metrics_.request_done(endpoint, type, metrics::RequestStatus::kError);
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
    metrics_.request_done(endpoint, type, metrics::RequestStatus::kSuccess);
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
  std::shared_ptr<const model::Model> model_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<engine::AsyncEngine> engine_;
  const std::string served_name_;
  const int64_t max_context_;
  metrics::FrontendMetrics metrics_;
  const ChatPrompt chat_prompt_;
  const int64_t created_;
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

Result<std::unique_ptr<Frontend>> Frontend::create(FrontendOptions options,
                                                   std::shared_ptr<const model::Model> model,
                                                   std::unique_ptr<tokenizer::Tokenizer> tokenizer,
                                                   std::unique_ptr<engine::AsyncEngine> engine) {
  TURBINE_RETURN_IF_ERROR(options.validate());
  if (!model || !tokenizer || !engine) return internal_error("frontend created without a model");
  return std::unique_ptr<Frontend>(std::make_unique<FrontendImpl>(
      std::move(options), std::move(model), std::move(tokenizer), std::move(engine)));
}

}  // namespace turbine::frontend
