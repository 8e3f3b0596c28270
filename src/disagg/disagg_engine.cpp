#include "disagg/disagg_engine.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace turbine::disagg {

bool should_prefill_remotely(int uncached_prompt_tokens, int max_local_prefill_length,
                             bool prefill_capacity_free) {
  return prefill_capacity_free && uncached_prompt_tokens > max_local_prefill_length;
}

Status DisaggOptions::validate() const {
  if (max_local_prefill_length < 0)
    return invalid_argument("max_local_prefill_length must be >= 0", "max_local_prefill_length");
  if (max_inflight_prefills < 0)
    return invalid_argument("max_inflight_prefills must be >= 0", "max_inflight_prefills");
  return Status::ok();
}

struct DisaggEngine::Request {
  std::recursive_mutex mu;  // a pool may call back synchronously from a submit made under it
  uint64_t caller_id = 0;
  std::vector<int32_t> prompt;
  engine::SamplingParams params;
  engine::OutputCallback on_output;
  trace::TraceContext trace;  // the caller's span: both phases are its children
  enum class Phase { kPrefill, kDecode, kDone } phase = Phase::kPrefill;
  uint64_t phase_id = 0;   // the current phase's request id in its pool
  int offset_tokens = 0;   // tokens delivered before the decode phase (the prefill's first)
  int cached_tokens = -1;  // from the prefill, when remote
  bool cancelled = false;
};

DisaggEngine::DisaggEngine(DisaggOptions options, std::shared_ptr<engine::AsyncEngine> prefill,
                           std::shared_ptr<engine::AsyncEngine> decode,
                           std::shared_ptr<engine::KvTransfer> transfer,
                           CachedTokensFn decode_cached)
    : options_(options),
      prefill_(std::move(prefill)),
      decode_(std::move(decode)),
      transfer_(std::move(transfer)),
      decode_cached_(std::move(decode_cached)) {}

DisaggEngine::~DisaggEngine() {
  shutdown();
}

bool DisaggEngine::prefill_capacity_free() const {
  const int limit =
      options_.max_inflight_prefills > 0 ? options_.max_inflight_prefills : prefill_->num_slots();
  return limit > 0 && inflight_prefills_.load() < limit;
}

int DisaggEngine::max_context() const {
  const int p = prefill_->max_context(), d = decode_->max_context();
  return p > 0 ? std::min(p, d) : d;
}

DisaggStats DisaggEngine::disagg_stats() const {
  DisaggStats s;
  s.remote_prefills = remote_prefills_.load();
  s.local_prefills = local_prefills_.load();
  s.prefill_failures = prefill_failures_.load();
  s.inflight_prefills = inflight_prefills_.load();
  return s;
}

engine::EngineStats DisaggEngine::stats() const {
  engine::EngineStats a = decode_->stats();
  const engine::EngineStats b = prefill_->stats();
  engine::accumulate(a, b);
  a.disagg_remote_prefills += remote_prefills_.load();
  a.disagg_local_prefills += local_prefills_.load();
  a.disagg_prefill_failures += prefill_failures_.load();
  a.disagg_prefill_inflight += inflight_prefills_.load();
  a.disagg_prefill_queue += b.waiting;
  return a;
}

void DisaggEngine::release(const std::shared_ptr<const engine::KvTransferMeta>& meta) {
  if (meta && transfer_) transfer_->release(*meta);
}

Status DisaggEngine::submit(engine::EngineRequest request) {
  if (request.prompt.empty())
    return invalid_argument("the prompt must contain at least one token", "prompt");
  if (!request.on_output) return internal_error("disagg request without an output callback");
  TURBINE_RETURN_IF_ERROR(request.params.validate());
  auto r = std::make_shared<Request>();
  r->caller_id = request.id;
  r->prompt = std::move(request.prompt);
  r->params = std::move(request.params);
  r->on_output = std::move(request.on_output);
  r->trace = request.trace;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return {StatusCode::kUnavailable, "the server is shutting down"};
    if (requests_.count(r->caller_id) != 0)
      return invalid_argument("duplicate request id " + std::to_string(r->caller_id));
    requests_[r->caller_id] = r;
  }
  const int prompt_len = static_cast<int>(r->prompt.size());
  const int cached = decode_cached_ ? std::clamp(decode_cached_(r->prompt), 0, prompt_len) : 0;
  const bool remote =
      request.routing.instance_id == 0 &&
      should_prefill_remotely(prompt_len - cached, options_.max_local_prefill_length,
                              prefill_capacity_free());
  std::lock_guard rlock(r->mu);
  Status st = Status::ok();
  if (remote) {
    engine::EngineRequest pr;
    pr.id = next_id_++;
    pr.prompt = r->prompt;
    pr.params = r->params;
    pr.params.max_tokens = 1;
    pr.params.min_tokens = std::min(1, r->params.min_tokens);
    pr.disagg.prefill_only = true;
    pr.trace = r->trace;
    pr.on_output = [this, r](engine::EngineOutput&& out) { on_prefill_output(r, std::move(out)); };
    r->phase_id = pr.id;
    inflight_prefills_++;
    st = prefill_->submit(std::move(pr));
    if (st.is_ok()) return st;
    inflight_prefills_--;
    prefill_failures_++;
    spdlog::warn("disagg: request {}: prefill pool refused ({}); prefilling on the decode side",
                 r->caller_id, st.to_string());
  } else {
    local_prefills_++;
  }
  // Local prefill: the decode pool serves the request as it came.
  engine::EngineRequest dr;
  dr.id = next_id_++;
  dr.prompt = r->prompt;
  dr.params = r->params;
  dr.routing = request.routing;
  dr.trace = r->trace;
  dr.on_output = [this, r](engine::EngineOutput&& out) { on_decode_output(r, std::move(out)); };
  r->phase = Request::Phase::kDecode;
  r->phase_id = dr.id;
  st = decode_->submit(std::move(dr));
  if (!st.is_ok()) {
    r->phase = Request::Phase::kDone;
    std::lock_guard lock(mu_);
    requests_.erase(r->caller_id);
  }
  return st;
}

Status DisaggEngine::submit_decode(const std::shared_ptr<Request>& r,
                                   std::shared_ptr<const engine::KvTransferMeta> import) {
  engine::EngineRequest dr;
  dr.id = next_id_++;
  dr.prompt = r->prompt;
  dr.params = r->params;
  if (r->offset_tokens > 0) {
    dr.params.prompt_logprobs = -1;  // the prefill side's first output carried them
    dr.params.max_tokens -= r->offset_tokens;
    dr.params.min_tokens = std::max(0, dr.params.min_tokens - r->offset_tokens);
    // The prefill side sampled the first token under the constraint (its engine applies the
    // mask like any other); the decode side's matcher replays it.
    if (dr.params.constraint.active()) dr.params.constraint_replay += r->offset_tokens;
  }
  dr.disagg.import = std::move(import);
  dr.trace = r->trace;
  dr.on_output = [this, r](engine::EngineOutput&& out) { on_decode_output(r, std::move(out)); };
  r->phase = Request::Phase::kDecode;
  r->phase_id = dr.id;
  return decode_->submit(std::move(dr));
}

void DisaggEngine::finish(const std::shared_ptr<Request>& r, engine::EngineOutput&& out) {
  r->phase = Request::Phase::kDone;
  {
    std::lock_guard lock(mu_);
    requests_.erase(r->caller_id);
  }
  out.prompt_tokens = static_cast<int>(r->prompt.size()) - r->offset_tokens;
  out.kv_transfer = nullptr;
  r->on_output(std::move(out));
}

void DisaggEngine::on_prefill_output(const std::shared_ptr<Request>& r,
                                     engine::EngineOutput&& out) {
  std::lock_guard rlock(r->mu);
  if (r->phase != Request::Phase::kPrefill) {
    release(out.kv_transfer);
    return;
  }
  if (out.finish == engine::FinishReason::kNone) return;  // max_tokens 1: only the final output
  inflight_prefills_--;
  using engine::FinishReason;
  const bool sampled = (out.finish == FinishReason::kStop || out.finish == FinishReason::kLength) &&
                       out.tokens.size() == 1;
  if (r->cancelled) {
    release(out.kv_transfer);
    engine::EngineOutput o;
    o.finish = FinishReason::kCancelled;
    return finish(r, std::move(o));
  }
  if (r->params.max_tokens == 0 && out.finish == FinishReason::kLength) {
    // Prompt scoring (echo, max_tokens 0): the prefill side's output is the whole answer.
    release(out.kv_transfer);
    remote_prefills_++;
    return finish(r, std::move(out));
  }
  if (!sampled) {
    // The prefill side failed (worker lost beyond migration, error, shut down): prefill here.
    release(out.kv_transfer);
    prefill_failures_++;
    spdlog::warn("disagg: request {}: prefill failed ({}: {}); prefilling on the decode side",
                 r->caller_id, engine::finish_reason_name(out.finish), out.error.to_string());
    Status st = submit_decode(r, nullptr);
    if (!st.is_ok()) {
      engine::EngineOutput o;
      o.finish = FinishReason::kError;
      o.error = std::move(st);
      finish(r, std::move(o));
    }
    return;
  }
  remote_prefills_++;
  r->cached_tokens = out.cached_tokens;
  const int32_t first = out.tokens.front().token;
  const bool ends = out.finish == FinishReason::kStop || r->params.max_tokens <= 1 ||
                    static_cast<int>(r->prompt.size()) + 1 >= decode_->max_context();
  engine::EngineOutput o;
  o.tokens = std::move(out.tokens);
  o.prompt_logprobs = std::move(out.prompt_logprobs);
  o.completion_tokens = 1;
  o.cached_tokens = std::max(0, out.cached_tokens);
  if (ends) {
    release(out.kv_transfer);
    o.finish = out.finish == FinishReason::kStop ? FinishReason::kStop : FinishReason::kLength;
    return finish(r, std::move(o));
  }
  o.prompt_tokens = static_cast<int>(r->prompt.size());
  r->on_output(std::move(o));
  r->prompt.push_back(first);
  r->offset_tokens = 1;
  Status st = submit_decode(r, out.kv_transfer);
  if (!st.is_ok()) {
    release(out.kv_transfer);
    engine::EngineOutput e;
    e.finish = FinishReason::kError;
    e.error = std::move(st);
    e.completion_tokens = 1;
    e.cached_tokens = std::max(0, r->cached_tokens);
    finish(r, std::move(e));
  }
}

void DisaggEngine::on_decode_output(const std::shared_ptr<Request>& r, engine::EngineOutput&& out) {
  std::lock_guard rlock(r->mu);
  if (r->phase != Request::Phase::kDecode) return;
  out.completion_tokens += r->offset_tokens;
  if (r->offset_tokens > 0) out.cached_tokens = std::max(0, r->cached_tokens);
  if (out.finish != engine::FinishReason::kNone) return finish(r, std::move(out));
  out.prompt_tokens = static_cast<int>(r->prompt.size()) - r->offset_tokens;
  r->on_output(std::move(out));
}

void DisaggEngine::cancel(uint64_t id) {
  end_request(id, /*stop=*/false);
}

void DisaggEngine::stop(uint64_t id) {
  end_request(id, /*stop=*/true);
}

void DisaggEngine::end_request(uint64_t id, bool stop) {
  std::shared_ptr<Request> r;
  {
    std::lock_guard lock(mu_);
    auto it = requests_.find(id);
    if (it == requests_.end()) return;
    r = it->second;
  }
  std::lock_guard rlock(r->mu);
  r->cancelled = true;
  if (r->phase == Request::Phase::kPrefill) prefill_->cancel(r->phase_id);
  if (r->phase == Request::Phase::kDecode) {
    if (stop) {
      decode_->stop(r->phase_id);
    } else {
      decode_->cancel(r->phase_id);
    }
  }
}

void DisaggEngine::shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  // Decode first: a prefill finishing meanwhile finds the decode pool refusing and ends its
  // request with an error rather than starting new work.
  decode_->shutdown();
  if (options_.owns_prefill) prefill_->shutdown();
}

}  // namespace turbine::disagg
