#include "mock/mock_engine.h"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "kv/block_hash.h"

namespace turbine::mock {

using engine::EngineOutput;
using engine::EngineRequest;
using engine::FinishReason;

Status MockEngineOptions::validate() const {
  if (n_vocab < 1) return invalid_argument("n_vocab must be >= 1", "n_vocab");
  if (num_blocks < 1) return invalid_argument("num_blocks must be >= 1", "num_blocks");
  if (block_size < 1 || block_size > 1024)
    return invalid_argument("block_size must be in [1, 1024]", "block_size");
  if (max_context < 2) return invalid_argument("max_context must be >= 2", "max_context");
  if (max_num_seqs < 1) return invalid_argument("max_num_seqs must be >= 1", "max_num_seqs");
  if (max_num_batched_tokens < 1)
    return invalid_argument("max_num_batched_tokens must be >= 1", "max_num_batched_tokens");
  if (max_waiting < 1) return invalid_argument("max_waiting must be >= 1", "max_waiting");
  if (!(speedup > 0) || !std::isfinite(speedup))
    return invalid_argument("speedup must be > 0", "speedup");
  return Status::ok();
}

struct MockEngine::Sequence {
  EngineRequest req;
  std::vector<int32_t> tokens;  // prompt followed by generated tokens
  int n_prompt = 0;
  int n_computed = 0;
  int n_generated = 0;
  int cached_tokens = -1;
  uint64_t prompt_hash = 0;
  std::vector<kv::BlockRef> blocks;
  size_t n_registered = 0;
  kv::BlockHashes hashes;

  explicit Sequence(EngineRequest&& r)
      : req(std::move(r)),
        tokens(req.prompt),
        n_prompt(static_cast<int>(req.prompt.size())),
        prompt_hash(kv::local_block_hash(req.prompt)) {}
};

MockEngine::MockEngine(MockEngineOptions options)
    : options_(std::move(options)),
      max_context_(static_cast<int>(std::min<int64_t>(
          options_.max_context, int64_t{options_.num_blocks} * options_.block_size))),
      pool_(options_.num_blocks, options_.block_size, options_.enable_prefix_caching,
            options_.kv_event_sink) {
  publish_stats();
  thread_ = std::thread([this] { loop(); });
}

MockEngine::~MockEngine() {
  shutdown();
}

Status MockEngine::submit(EngineRequest request) {
  const auto n = static_cast<int64_t>(request.prompt.size());
  if (n == 0) return invalid_argument("the prompt must contain at least one token", "prompt");
  if (n >= max_context_) {
    return invalid_argument("the prompt has " + std::to_string(n) +
                                " tokens; this model's maximum context length is " +
                                std::to_string(max_context_) + " tokens",
                            "prompt");
  }
  for (int32_t t : request.prompt) {
    if (t < 0 || t >= options_.n_vocab) {
      return invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary",
                              "prompt");
    }
  }
  TURBINE_RETURN_IF_ERROR(request.params.validate());
  if (!request.on_output) return internal_error("mock request without an output callback");
  {
    std::lock_guard lock(mu_);
    if (stopping_) return {StatusCode::kUnavailable, "the server is shutting down"};
    if (static_cast<int>(inbox_.size()) + n_waiting_.load() >= options_.max_waiting)
      return {StatusCode::kResourceExhausted, "too many queued requests; retry later"};
    inbox_.push_back(std::move(request));
  }
  cv_.notify_one();
  return Status::ok();
}

void MockEngine::cancel(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    cancels_.insert(id);
  }
  cv_.notify_one();
}

void MockEngine::shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

engine::EngineStats MockEngine::stats() const {
  engine::EngineStats s;
  s.running = n_running_.load();
  s.waiting = n_waiting_.load();
  s.steps = n_steps_.load();
  s.cancelled = n_cancelled_.load();
  s.prompt_tokens = n_prompt_tokens_.load();
  s.generated_tokens = n_generated_tokens_.load();
  s.kv_total_blocks = options_.num_blocks;
  s.kv_block_size = options_.block_size;
  s.kv_used_blocks = kv_used_blocks_.load();
  s.prefix_cache_queried_tokens = prefix_queried_tokens_.load();
  s.prefix_cache_hit_tokens = prefix_hit_tokens_.load();
  s.preemptions = n_preemptions_.load();
  s.last_step_batch_size = last_batch_size_.load();
  s.last_step_tokens = last_step_tokens_.load();
  s.last_step_seconds = last_step_seconds_.load();
  return s;
}

void MockEngine::publish_stats() {
  n_running_ = static_cast<int>(running_.size());
  n_waiting_ = static_cast<int>(waiting_.size());
  kv_used_blocks_ = pool_.num_blocks() - pool_.num_free();
}

void MockEngine::free_blocks(Sequence& seq) {
  kv::BlockPool::release(seq.blocks);
  seq.n_registered = 0;
  seq.n_computed = 0;
}

void MockEngine::finish(Sequence& seq, FinishReason reason, Status error) {
  EngineOutput out;
  out.finish = reason;
  out.error = std::move(error);
  out.prompt_tokens = seq.n_prompt;
  out.completion_tokens = seq.n_generated;
  out.cached_tokens = std::max(0, seq.cached_tokens);
  if (reason == FinishReason::kCancelled) n_cancelled_++;
  seq.req.on_output(std::move(out));
}

void MockEngine::loop() {
  for (;;) {
    std::deque<EngineRequest> incoming;
    std::unordered_set<uint64_t> cancels;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] {
        return stopping_ || !inbox_.empty() || !cancels_.empty() || !running_.empty() ||
               !waiting_.empty();
      });
      incoming.swap(inbox_);
      cancels.swap(cancels_);
      stopping = stopping_;
    }
    for (auto& r : incoming) {
      n_prompt_tokens_ += r.prompt.size();
      waiting_.push_back(std::make_unique<Sequence>(std::move(r)));
    }
    if (stopping) {
      for (auto& s : running_) cancels.insert(s->req.id);
      for (auto& s : waiting_) cancels.insert(s->req.id);
    }
    if (!cancels.empty()) {
      auto drop = [&](auto& seqs) {
        for (auto it = seqs.begin(); it != seqs.end();) {
          if (cancels.count((*it)->req.id) != 0) {
            free_blocks(**it);
            finish(**it, FinishReason::kCancelled);
            it = seqs.erase(it);
          } else {
            ++it;
          }
        }
      };
      drop(waiting_);
      drop(running_);
    }
    if (stopping) {
      publish_stats();
      return;
    }
    step();
    publish_stats();
  }
}

bool MockEngine::grow(Sequence& seq, int n_tokens) {
  const int bs = options_.block_size;
  const int needed = (seq.n_computed + n_tokens + bs - 1) / bs;
  const int extra = needed - static_cast<int>(seq.blocks.size());
  if (extra <= 0) return true;
  auto fresh = pool_.allocate(extra);
  if (!fresh) return false;
  for (auto& b : *fresh) seq.blocks.push_back(std::move(b));
  return true;
}

void MockEngine::preempt(std::vector<Planned>& plan, int& budget) {
  std::unique_ptr<Sequence> victim = std::move(running_.back());
  running_.pop_back();
  auto it = std::find_if(plan.begin(), plan.end(),
                         [&](const Planned& p) { return p.seq == victim.get(); });
  if (it != plan.end()) {
    budget += it->n_tokens;
    plan.erase(it);
  }
  free_blocks(*victim);
  n_preemptions_++;
  waiting_.push_front(std::move(victim));
}

// The same policy as engine::Engine::schedule (see engine/engine.h).
std::vector<MockEngine::Planned> MockEngine::schedule() {
  const int bs = options_.block_size;
  std::vector<Planned> plan;
  int budget = options_.max_num_batched_tokens;
  bool preempted = false;
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
      Sequence* s = running_[i].get();
      const int remaining = static_cast<int>(s->tokens.size()) - s->n_computed;
      if ((pass == 0) != (remaining == 1)) continue;
      const int n = std::min(remaining, budget);
      bool self_preempted = false;
      while (!grow(*s, n)) {
        preempted = true;
        self_preempted = running_.back().get() == s;
        preempt(plan, budget);
        if (self_preempted) break;
      }
      if (self_preempted) break;
      plan.push_back({s, n});
      budget -= n;
    }
  }
  while (!preempted && budget > 0 && !waiting_.empty() &&
         static_cast<int>(running_.size()) < options_.max_num_seqs) {
    Sequence* s = waiting_.front().get();
    kv::extend_block_hashes(s->hashes, s->tokens, bs);
    const size_t max_hit =
        std::min(s->hashes.sequence.size(), (s->tokens.size() - 1) / static_cast<size_t>(bs));
    std::vector<kv::BlockRef> hit =
        pool_.match_prefix(std::span<const uint64_t>(s->hashes.sequence).first(max_hit));
    const int n_hit = static_cast<int>(hit.size()) * bs;
    for (auto& b : hit) s->blocks.push_back(std::move(b));
    s->n_computed = n_hit;
    s->n_registered = s->blocks.size();
    const int n = std::min(static_cast<int>(s->tokens.size()) - n_hit, budget);
    if (!grow(*s, n)) {
      free_blocks(*s);
      break;
    }
    prefix_queried_tokens_ += s->tokens.size();
    prefix_hit_tokens_ += static_cast<uint64_t>(n_hit);
    if (s->cached_tokens < 0) s->cached_tokens = std::min(n_hit, s->n_prompt);
    plan.push_back({s, n});
    budget -= n;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  return plan;
}

int32_t MockEngine::next_token(Sequence& s) const {
  const auto& p = s.req.params;
  const uint64_t pos = static_cast<uint64_t>(s.n_generated);
  uint64_t x = s.prompt_hash ^ (pos + 1) * 0x9e3779b97f4a7c15ULL;
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 29;
  auto id = static_cast<int32_t>(x % static_cast<uint64_t>(options_.n_vocab));
  // Before min_tokens, EOS and stop ids cannot be produced (as the sampler masks them).
  if (s.n_generated < p.min_tokens) {
    const auto& eos = options_.eos_token_ids;
    for (int tries = 0; tries < options_.n_vocab; ++tries) {
      const bool is_eos = !p.ignore_eos && std::find(eos.begin(), eos.end(), id) != eos.end();
      const bool is_stop =
          std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), id) != p.stop_token_ids.end();
      if (!is_eos && !is_stop) break;
      id = (id + 1) % options_.n_vocab;
    }
  }
  return id;
}

void MockEngine::step() {
  const int bs = options_.block_size;
  std::vector<Planned> plan = schedule();
  if (plan.empty()) {
    if (running_.empty() && !waiting_.empty()) {
      std::unique_ptr<Sequence> s = std::move(waiting_.front());
      waiting_.pop_front();
      spdlog::error("mock engine: request {} does not fit the KV cache", s->req.id);
      free_blocks(*s);
      finish(*s, FinishReason::kError,
             {StatusCode::kResourceExhausted, "the request does not fit the KV cache"});
    }
    return;
  }
  // Simulated time of this step.
  int64_t kv_tokens = 0;
  int64_t prefill_tokens = 0;
  double prefill_ctx = 0;
  int n_tokens = 0;
  for (const Planned& p : plan) {
    const Sequence& s = *p.seq;
    kv_tokens += s.n_computed + p.n_tokens;
    n_tokens += p.n_tokens;
    const bool decode = s.n_computed + 1 == static_cast<int>(s.tokens.size()) && p.n_tokens == 1 &&
                        s.n_generated > 0;
    if (!decode) {
      prefill_tokens += p.n_tokens;
      prefill_ctx += static_cast<double>(p.n_tokens) * (s.n_computed + p.n_tokens / 2.0);
    }
  }
  const double ms = options_.timing.step_ms(static_cast<int>(plan.size()), kv_tokens,
                                            prefill_tokens, prefill_ctx);
  simulated_ms_ = simulated_ms_.load() + ms;
  const auto now = std::chrono::steady_clock::now();
  const auto wall = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double, std::milli>(ms / options_.speedup));
  // Steps follow each other back to back in simulated time; an idle engine starts from now.
  next_step_at_ = std::max(next_step_at_, now) + wall;
  {
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, next_step_at_, [&] { return stopping_; });
  }
  n_steps_++;

  std::vector<Sequence*> done;
  for (const Planned& p : plan) {
    Sequence& s = *p.seq;
    s.n_computed += p.n_tokens;
    const size_t n_full = static_cast<size_t>(s.n_computed / bs);
    if (n_full > s.n_registered) {
      kv::extend_block_hashes(s.hashes, s.tokens, bs);
      pool_.cache_full_blocks(std::span<const kv::BlockRef>(s.blocks).first(n_full), s.n_registered,
                              s.hashes, s.tokens);
      s.n_registered = n_full;
    }
    if (s.n_computed != static_cast<int>(s.tokens.size())) continue;  // mid-prefill chunk
    engine::SampledToken tok;
    tok.token = next_token(s);
    if (s.req.params.n_logprobs > 0) {
      tok.top_logprobs.push_back({tok.token, 0.0f});
      for (int k = 1; k < s.req.params.n_logprobs; ++k)
        tok.top_logprobs.push_back({(tok.token + k) % options_.n_vocab, -20.0f});
    }
    const int32_t id = tok.token;
    s.tokens.push_back(id);
    s.n_generated++;
    n_generated_tokens_++;
    FinishReason reason = FinishReason::kNone;
    const auto& eos = options_.eos_token_ids;
    const auto& stops = s.req.params.stop_token_ids;
    if ((!s.req.params.ignore_eos && std::find(eos.begin(), eos.end(), id) != eos.end()) ||
        std::find(stops.begin(), stops.end(), id) != stops.end()) {
      reason = FinishReason::kStop;
    } else if (s.n_generated >= s.req.params.max_tokens ||
               static_cast<int>(s.tokens.size()) >= max_context_) {
      reason = FinishReason::kLength;
    }
    EngineOutput out;
    out.tokens.push_back(std::move(tok));
    out.finish = reason;
    out.prompt_tokens = s.n_prompt;
    out.completion_tokens = s.n_generated;
    out.cached_tokens = std::max(0, s.cached_tokens);
    if (reason != FinishReason::kNone) done.push_back(&s);
    s.req.on_output(std::move(out));
  }
  for (Sequence* s : done) {
    free_blocks(*s);
    auto it =
        std::find_if(running_.begin(), running_.end(), [&](const auto& p) { return p.get() == s; });
    running_.erase(it);
  }
  last_batch_size_ = static_cast<int>(plan.size());
  last_step_tokens_ = n_tokens;
  last_step_seconds_ = ms / 1000.0;
}

}  // namespace turbine::mock
