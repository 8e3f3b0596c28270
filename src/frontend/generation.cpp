#include "frontend/generation.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/this_coro.hpp>

#include "frontend/engine_call.h"
#include "frontend/postprocessor.h"

namespace turbine::frontend {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

http::Headers with(http::Headers a, const http::Headers& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Counts the request in flight (frontend and model gauges) for its lifetime.
class InflightGuard {
 public:
  InflightGuard(std::atomic<int>& inflight, metrics::ModelMetrics& mm)
      : inflight_(inflight), mm_(mm) {
    inflight_++;
    mm_.inflight.Increment();
  }
  ~InflightGuard() {
    mm_.inflight.Decrement();
    inflight_--;
  }
  InflightGuard(const InflightGuard&) = delete;
  InflightGuard& operator=(const InflightGuard&) = delete;

 private:
  std::atomic<int>& inflight_;
  metrics::ModelMetrics& mm_;
};

// One running generation. Lives in run_generation's coroutine frame, on the request's strand.
class Run {
 public:
  Run(const GenerationEnv& env, Generation g, http::ResponseWriter& w)
      : env_(env),
        g_(std::move(g)),
        w_(w),
        protocol_(*g_.protocol),
        sampling_(g_.prepared.sampling),
        mm_(env.metrics.model(g_.model->name)),
        type_(sampling_.stream ? metrics::RequestType::kStream : metrics::RequestType::kUnary),
        span_(g_.span ? std::move(*g_.span)
                      : env.tracer.start_span(std::string(protocol_.route()),
                                              trace::SpanKind::kServer, g_.parent)) {
    span_.set_attribute("gen_ai.request.model", g_.model->name);
    span_.set_attribute("turbine.stream", sampling_.stream);
    std::vector<PreparedChoice>& choices = g_.prepared.choices;
    std::sort(choices.begin(), choices.end(),
              [](const PreparedChoice& a, const PreparedChoice& b) { return a.index < b.index; });
  }

  asio::awaitable<void> run() {
    const InflightGuard guard(env_.inflight, mm_);
    const auto t_start = Clock::now();
    const asio::any_io_executor strand = co_await asio::this_coro::executor;
    EngineCall call(*g_.model->engine, mm_, strand, env_.next_engine_id);
    make_postprocessors();
    if (Status st = call.submit(g_.prepared.choices, g_.worker_instance_id, span_.context());
        !st.is_ok()) {
      mm_.request_done(protocol_.endpoint(), type_, metrics::RequestStatus::kError);
      span_.set_error(st.message());
      co_return co_await send_error(env_.metrics, protocol_, w_, st, g_.headers);
    }
    w_.on_disconnect(call.closer());
    api::ResponseMeta meta{protocol_.make_id(), unix_now(), g_.model->name};
    meta.prompt_tokens = usage().prompt_tokens;
    encoder_ = protocol_.encoder(meta, *g_.request);
    outputs_.resize(post_.size());
    for (size_t i = 0; i < outputs_.size(); ++i) outputs_[i].index = static_cast<int>(i);

    bool client_ok = co_await start();
    if (client_ok) client_ok = co_await pump(call);
    const api::Usage usage = this->usage();
    span_.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens);
    span_.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens);
    span_.set_attribute("turbine.cached_tokens", usage.cached_tokens.value_or(0));
    if (!client_ok || w_.client_gone()) {
      span_.set_attribute("turbine.client_disconnected", true);
      call.cancel_open();
      mm_.disconnected_clients.Increment();
      mm_.request_done(protocol_.endpoint(), type_, metrics::RequestStatus::kCancelled);
      spdlog::debug("{} request went away after {:.3f} s", protocol_.endpoint(),
                    std::chrono::duration<double>(Clock::now() - t_start).count());
      co_return;
    }
    mm_.request_duration.Observe(std::chrono::duration<double>(Clock::now() - t_start).count());
    mm_.input_tokens.Observe(static_cast<double>(usage.prompt_tokens));
    mm_.output_tokens.Observe(static_cast<double>(usage.completion_tokens));
    mm_.output_tokens_total.Increment(static_cast<double>(usage.completion_tokens));
    co_await finish(usage);
  }

 private:
  void make_postprocessors() {
    const PreparedRequest& p = g_.prepared;
    PostprocessOptions opts;
    opts.stop = sampling_.stop;
    opts.skip_special_tokens = sampling_.skip_special_tokens;
    // best_of ranks sequences by their tokens' logprobs (dropped later unless asked for).
    opts.logprobs = sampling_.logprobs.has_value() || p.sequences_per_prompt > sampling_.n;
    const auto* chat = std::get_if<api::ChatRequest>(g_.request.get());
    const TextProcessorContext context{p.chat, p.tools_json, p.prompt_text,
                                       chat != nullptr ? &chat->extras : nullptr, p.tool_form};
    for (const PreparedChoice& c : p.choices) {
      std::vector<std::unique_ptr<TextProcessor>> processors;
      if (p.chat && g_.model->text_processors) processors = g_.model->text_processors(context);
      PostprocessOptions o = opts;
      for (const auto& proc : processors) {
        const std::vector<int32_t> ids = proc->markup_tokens();
        o.keep_special.insert(o.keep_special.end(), ids.begin(), ids.end());
      }
      std::sort(o.keep_special.begin(), o.keep_special.end());
      post_.push_back(std::make_unique<ChoicePostprocessor>(
          c.index, *g_.model->tokenizer, c.prompt->empty() ? -1 : c.prompt->back(), std::move(o),
          std::move(processors)));
    }
  }

  // The stream's opening events and echoed prompts (unary: the echo starts each output).
  asio::awaitable<bool> start() {
    std::string frame;
    if (sampling_.stream) {
      std::vector<int> indices;
      for (const auto& p : post_) indices.push_back(p->index());
      encoder_->stream_start(indices, frame);
    }
    echo_pending_.assign(g_.prepared.choices.size(), false);
    for (const PreparedChoice& c : g_.prepared.choices) {
      if (c.echo.empty()) continue;
      // With prompt logprobs the echo waits for the first output, which carries them.
      if (c.params.prompt_logprobs >= 0) {
        echo_pending_[static_cast<size_t>(c.index)] = true;
        continue;
      }
      const api::ChoiceDelta d = post_[static_cast<size_t>(c.index)]->echo(c.echo);
      if (sampling_.stream) {
        encoder_->stream_delta(d, frame);
        if (g_.on_finished) outputs_[static_cast<size_t>(c.index)].add(d);
      } else {
        outputs_[static_cast<size_t>(c.index)].add(d);
      }
    }
    if (!sampling_.stream) co_return true;
    env_.metrics.http_response(200);
    if (!co_await w_.start_stream(200, "text/event-stream", g_.headers)) co_return false;
    co_return co_await w_.write_chunk(frame);
  }

  // Engine outputs -> deltas -> events (or outputs), until every choice finished. False: the
  // client went away.
  asio::awaitable<bool> pump(EngineCall& call) {
    std::string frame;  // one write per wake-up
    while (call.open() > 0) {
      std::deque<MailItem> items = co_await call.next();
      if (items.empty()) co_return false;  // closed: the client went away
      frame.clear();
      for (MailItem& item : items) {
        if (item.index < 0 || static_cast<size_t>(item.index) >= post_.size()) continue;
        if (echo_pending_[static_cast<size_t>(item.index)]) {
          echo_pending_[static_cast<size_t>(item.index)] = false;
          const api::ChoiceDelta d = echo_with_logprobs(item.index, item.output.prompt_logprobs);
          if (sampling_.stream) {
            encoder_->stream_delta(d, frame);
          } else {
            outputs_[static_cast<size_t>(item.index)].add(d);
          }
        }
        ChoicePostprocessor::Step step = post_[static_cast<size_t>(item.index)]->push(item.output);
        if (step.stop_string) {
          call.stop(item.index);
        } else if (step.finished) {
          call.finished(item.index);
        }
        if (step.delta.empty()) continue;
        if (sampling_.stream) {
          encoder_->stream_delta(step.delta, frame);
          // The completion callback gets the whole output, streamed or not.
          if (g_.on_finished) outputs_[static_cast<size_t>(item.index)].add(step.delta);
        } else {
          outputs_[static_cast<size_t>(item.index)].add(step.delta);
        }
      }
      if (sampling_.stream && !frame.empty() && !co_await w_.write_chunk(frame)) co_return false;
    }
    co_return true;
  }

  // The echoed prompt of choice `index` with its tokens' logprobs: the first token's are null
  // (nothing precedes it), entry i of `scored` is prompt token i + 1's.
  api::ChoiceDelta echo_with_logprobs(int index, const std::vector<engine::SampledToken>& scored) {
    const PreparedChoice& c = g_.prepared.choices[static_cast<size_t>(index)];
    api::ChoiceDelta d = post_[static_cast<size_t>(index)]->echo(c.echo);
    const tokenizer::Tokenizer& tok = *g_.model->tokenizer;
    if (c.prompt->empty()) return d;
    d.logprobs.reserve(c.prompt->size());
    engine::SampledToken first;
    first.token = c.prompt->front();
    d.logprobs.push_back(token_logprob(tok, first));
    d.logprobs.back().null_logprob = true;
    for (const engine::SampledToken& t : scored) d.logprobs.push_back(token_logprob(tok, t));
    return d;
  }

  // Prompt tokens count once per prompt (its n choices share it); completion tokens per sequence
  // (best_of: every sequence generated). Cached tokens are the first sequence's of each prompt:
  // the others reuse its blocks (prompt groups), which is no cache hit of the request's prompt.
  api::Usage usage() const {
    api::Usage u;
    const int n = std::max(1, g_.prepared.sequences_per_prompt);
    for (size_t i = 0; i < g_.prepared.choices.size(); ++i) {
      const PreparedChoice& c = g_.prepared.choices[i];
      if (i < post_.size()) u.completion_tokens += post_[i]->completion_tokens();
      if (c.index % n != 0) continue;
      u.prompt_tokens += static_cast<int64_t>(c.prompt->size());
      if (i < post_.size()) {
        u.cached_tokens = u.cached_tokens.value_or(0) + post_[i]->cached_tokens();
      }
    }
    return u;
  }

  // best_of: per prompt, the n sequences with the highest cumulative logprob, renumbered
  // prompt * n + rank (ties: the lower index first).
  std::vector<ChoiceOutput> best_of_outputs() {
    const int n = std::max(1, sampling_.n);
    const int seqs = std::max(1, g_.prepared.sequences_per_prompt);
    if (seqs <= n) return std::move(outputs_);
    std::vector<ChoiceOutput> out;
    for (size_t first = 0; first < outputs_.size(); first += static_cast<size_t>(seqs)) {
      std::vector<std::pair<double, size_t>> ranked;
      for (size_t i = first; i < std::min(outputs_.size(), first + seqs); ++i) {
        double sum = 0.0;
        for (const api::TokenLogprob& lp : outputs_[i].logprobs) sum += lp.logprob;
        ranked.emplace_back(-sum, i);
      }
      std::stable_sort(ranked.begin(), ranked.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      for (int k = 0; k < n && k < static_cast<int>(ranked.size()); ++k) {
        ChoiceOutput o = std::move(outputs_[ranked[static_cast<size_t>(k)].second]);
        o.index = static_cast<int>(first / static_cast<size_t>(seqs)) * n + k;
        if (!sampling_.logprobs) o.logprobs.clear();
        out.push_back(std::move(o));
      }
    }
    return out;
  }

  asio::awaitable<void> finish(const api::Usage& usage) {
    const Status* failed = nullptr;
    for (const auto& p : post_) {
      if (p->error()) {
        failed = &*p->error();
        break;
      }
    }
    if (failed != nullptr) span_.set_error(failed->message());
    const auto status = failed ? metrics::RequestStatus::kError : metrics::RequestStatus::kSuccess;
    if (failed == nullptr && g_.on_finished) {
      g_.on_finished(FinishedResponse{g_.model->name, outputs_, usage});
    }
    if (sampling_.stream) {
      std::string frame;
      if (failed != nullptr) encoder_->stream_error(*failed, frame);
      encoder_->stream_end(usage, frame);
      co_await w_.write_chunk(frame);
      co_await w_.end_stream();
      mm_.request_done(protocol_.endpoint(), type_, status);
      co_return;
    }
    mm_.request_done(protocol_.endpoint(), type_, status);
    if (failed != nullptr) {
      // A request a remote worker refused as invalid (e.g. prompt logprobs on a backend without
      // them) is the client's 400, as it is from a local engine's submit().
      if (failed->code() == StatusCode::kInvalidArgument) {
        co_return co_await send_error(env_.metrics, protocol_, w_, *failed, g_.headers);
      }
      // No worker left to migrate to (a hung or lost one) is 503, so clients retry; else 500.
      const StatusCode code = failed->code() == StatusCode::kUnavailable ? StatusCode::kUnavailable
                                                                         : StatusCode::kInternal;
      co_return co_await send_error(env_.metrics, protocol_, w_,
                                    Status(code, "generation failed: " + failed->message()),
                                    g_.headers);
    }
    const std::vector<ChoiceOutput> outputs = best_of_outputs();
    co_await send_body(env_.metrics, w_, 200, encoder_->unary(outputs, usage), g_.headers);
  }

  const GenerationEnv& env_;
  Generation g_;
  http::ResponseWriter& w_;
  const ProtocolAdapter& protocol_;
  const api::SamplingOptions& sampling_;
  metrics::ModelMetrics& mm_;
  const metrics::RequestType type_;
  trace::Span span_;  // the request's server span; ends with the Run
  std::vector<std::unique_ptr<ChoicePostprocessor>> post_;  // by choice index
  std::unique_ptr<ResponseEncoder> encoder_;
  std::vector<ChoiceOutput> outputs_;  // unary: by choice index
  std::vector<bool> echo_pending_;     // by choice index: the echo waits for prompt logprobs
};

}  // namespace

asio::awaitable<void> run_generation(const GenerationEnv& env, Generation g,
                                     http::ResponseWriter& w) {
  Run run(env, std::move(g), w);
  co_await run.run();
}

asio::awaitable<void> send_canned(const GenerationEnv& env, const ProtocolAdapter& protocol,
                                  std::shared_ptr<const ParsedRequest> request,
                                  CannedResponse canned, http::Headers headers,
                                  http::ResponseWriter& w) {
  const api::SamplingOptions& sampling = sampling_of(*request);
  const api::ResponseMeta meta{protocol.make_id(), unix_now(),
                               canned.model.empty() ? model_of(*request) : canned.model};
  std::unique_ptr<ResponseEncoder> encoder = protocol.encoder(meta, *request);
  std::vector<int> indices;  // each choice once, in order of first appearance
  for (const api::ChoiceDelta& d : canned.choices) {
    if (std::find(indices.begin(), indices.end(), d.index) == indices.end()) {
      indices.push_back(d.index);
    }
  }
  if (sampling.stream) {
    std::string frame;
    encoder->stream_start(indices, frame);
    for (const api::ChoiceDelta& d : canned.choices) encoder->stream_delta(d, frame);
    encoder->stream_end(canned.usage, frame);
    env.metrics.http_response(200);
    if (!co_await w.start_stream(200, "text/event-stream", std::move(headers))) co_return;
    if (co_await w.write_chunk(frame)) co_await w.end_stream();
    co_return;
  }
  std::vector<ChoiceOutput> outputs(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) outputs[i].index = indices[i];
  for (const api::ChoiceDelta& d : canned.choices) {
    const size_t at =
        static_cast<size_t>(std::find(indices.begin(), indices.end(), d.index) - indices.begin());
    outputs[at].add(d);
  }
  co_await send_body(env.metrics, w, 200, encoder->unary(outputs, canned.usage),
                     std::move(headers));
}

asio::awaitable<void> send_body(metrics::FrontendMetrics& metrics, http::ResponseWriter& w,
                                int status, std::string body, http::Headers headers,
                                const char* content_type) {
  metrics.http_response(status);
  co_await w.send(status, content_type, std::move(body), std::move(headers));
}

asio::awaitable<void> send_error(metrics::FrontendMetrics& metrics, const ProtocolAdapter& protocol,
                                 http::ResponseWriter& w, const Status& status,
                                 http::Headers headers) {
  if (status.code() == StatusCode::kInternal)
    spdlog::error("request failed: {}", status.to_string());
  ErrorReply reply = protocol.error(status);
  co_await send_body(metrics, w, reply.status, std::move(reply.body),
                     with(std::move(reply.headers), headers));
}

}  // namespace turbine::frontend
