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
  if (kv_bytes_per_token < 1)
    return invalid_argument("kv_bytes_per_token must be >= 1", "kv_bytes_per_token");
  if (!(kv_transfer_gbps > 0) || !std::isfinite(kv_transfer_gbps))
    return invalid_argument("kv_transfer_gbps must be > 0", "kv_transfer_gbps");
  if (kv_transfer_ttl.count() <= 0)
    return invalid_argument("kv_transfer_ttl must be > 0", "kv_transfer_ttl");
  if (kv_fetch_timeout.count() <= 0)
    return invalid_argument("kv_fetch_timeout must be > 0", "kv_fetch_timeout");
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
  // KV import (req.disagg.import): tried once; while fetching, blocks [fetch_first, +fetch_n).
  bool import_tried = false;
  bool imported = false;   // its first step after the import is a decode step
  uint64_t fetch_gen = 0;  // non-zero while a fetch is in flight
  bool fetch_answered = false;
  int fetch_first = 0;
  int fetch_n = 0;
  double fetch_sim_s = 0;                          // simulated transfer time
  std::chrono::steady_clock::time_point ready_at;  // the bytes have arrived (wall)
  std::chrono::steady_clock::time_point fetch_deadline;

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
      kv_layout_{
          "sim", options_.block_size, 0, 0, 0, options_.kv_bytes_per_token * options_.block_size},
      pool_(options_.num_blocks, options_.block_size, options_.enable_prefix_caching,
            options_.kv_event_sink),
      mailbox_(std::make_shared<Mailbox>()) {
  mailbox_->engine = this;
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

void MockEngine::stop(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    cancels_.insert(id);
    stops_.insert(id);
  }
  cv_.notify_one();
}

void MockEngine::shutdown() {
  {
    std::lock_guard lock(mailbox_->mu);
    mailbox_->engine = nullptr;
  }
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
  s.kv_transfers_pinned = n_transfers_pinned_.load();
  s.kv_transfer_pinned_blocks = n_transfer_pinned_blocks_.load();
  s.kv_transfers_expired = n_transfers_expired_.load();
  s.kv_imports = n_imports_.load();
  s.kv_import_fallbacks = n_import_fallbacks_.load();
  s.kv_import_fetched_blocks = n_import_fetched_blocks_.load();
  s.kv_import_reused_blocks = n_import_reused_blocks_.load();
  s.kv_import_bytes = n_import_bytes_.load();
  s.kv_import_seconds = import_seconds_.load();
  return s;
}

void MockEngine::read_transfer(uint64_t transfer_id, int first_block, int n_blocks,
                               engine::KvBytesCallback done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      source_ops_.push_back({transfer_id, first_block, n_blocks, std::move(done)});
      done = nullptr;
    }
  }
  if (done) return done(Status{StatusCode::kUnavailable, "the KV source is shutting down"});
  cv_.notify_one();
}

void MockEngine::release_transfer(uint64_t transfer_id) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    source_ops_.push_back({transfer_id, 0, 0, nullptr});
  }
  cv_.notify_one();
}

void MockEngine::publish_stats() {
  n_running_ = static_cast<int>(running_.size());
  n_waiting_ = static_cast<int>(waiting_.size() + fetching_.size());
  kv_used_blocks_ = pool_.num_blocks() - pool_.num_free();
  n_transfers_pinned_ = transfers_.size();
  n_transfer_pinned_blocks_ = transfers_.pinned_blocks();
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
    std::unordered_set<uint64_t> stops;  // of the cancels, those ended by the caller's stop()
    std::deque<Fetched> fetched;
    std::deque<SourceOp> ops;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      auto ready = [&] {
        return stopping_ || !inbox_.empty() || !cancels_.empty() || !fetched_.empty() ||
               !source_ops_.empty() || !running_.empty() || (!waiting_.empty() && !idle_);
      };
      if (const auto deadline = next_deadline())
        cv_.wait_until(lock, *deadline, ready);
      else
        cv_.wait(lock, ready);
      incoming.swap(inbox_);
      cancels.swap(cancels_);
      stops.swap(stops_);
      fetched.swap(fetched_);
      ops.swap(source_ops_);
      stopping = stopping_;
    }
    for (auto& op : ops) run_source_op(op);
    for (auto& f : fetched) complete_fetch(f.gen, std::move(f.data));
    advance(Clock::now());
    for (auto& r : incoming) {
      n_prompt_tokens_ += r.prompt.size();
      waiting_.push_back(std::make_unique<Sequence>(std::move(r)));
    }
    if (stopping) {
      for (auto& s : running_) cancels.insert(s->req.id);
      for (auto& s : waiting_) cancels.insert(s->req.id);
      for (auto& s : fetching_) cancels.insert(s->req.id);
    }
    if (!cancels.empty()) {
      auto drop = [&](auto& seqs) {
        for (auto it = seqs.begin(); it != seqs.end();) {
          if (cancels.count((*it)->req.id) != 0) {
            if ((*it)->fetch_gen != 0 && options_.kv_transfer)
              options_.kv_transfer->release(*(*it)->req.disagg.import);
            (*it)->fetch_gen = 0;
            free_blocks(**it);
            finish(**it, stops.count((*it)->req.id) != 0 ? FinishReason::kStop
                                                         : FinishReason::kCancelled);
            it = seqs.erase(it);
          } else {
            ++it;
          }
        }
      };
      drop(waiting_);
      drop(running_);
      drop(fetching_);
    }
    if (stopping) {
      transfers_.clear();
      publish_stats();
      return;
    }
    idle_ = !step();
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
         static_cast<int>(running_.size() + fetching_.size()) < options_.max_num_seqs) {
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
    if (s->req.disagg.import && !s->import_tried) {
      const ImportStart started = begin_import(*s);
      if (started == ImportStart::kNoBlocks) {
        free_blocks(*s);
        break;  // no overtaking, as below
      }
      if (started == ImportStart::kStarted) {
        prefix_queried_tokens_ += s->tokens.size();
        prefix_hit_tokens_ += static_cast<uint64_t>(n_hit);
        if (s->cached_tokens < 0) s->cached_tokens = std::min(n_hit, s->n_prompt);
        fetching_.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
        continue;
      }
    }
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

bool MockEngine::step() {
  const int bs = options_.block_size;
  std::vector<Planned> plan = schedule();
  if (plan.empty()) {
    if (running_.empty() && !waiting_.empty() && fetching_.empty() && transfers_.empty()) {
      std::unique_ptr<Sequence> s = std::move(waiting_.front());
      waiting_.pop_front();
      spdlog::error("mock engine: request {} does not fit the KV cache", s->req.id);
      free_blocks(*s);
      finish(*s, FinishReason::kError,
             {StatusCode::kResourceExhausted, "the request does not fit the KV cache"});
      return true;
    }
    return false;
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
                        (s.n_generated > 0 || s.imported);
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
               static_cast<int>(s.tokens.size()) >= max_context_ || s.req.disagg.prefill_only) {
      reason = FinishReason::kLength;
    }
    EngineOutput out;
    if (s.req.disagg.prefill_only) out.kv_transfer = pin_transfer(s);
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
  return true;
}

// ---- disaggregated serving, simulated (see mock_engine.h) --------------------------------------

std::optional<MockEngine::Clock::time_point> MockEngine::next_deadline() const {
  std::optional<Clock::time_point> d;
  auto take = [&](Clock::time_point t) {
    if (!d || t < *d) d = t;
  };
  for (const auto& s : fetching_) take(s->fetch_answered ? s->ready_at : s->fetch_deadline);
  if (auto e = transfers_.next_expiry()) take(*e);
  return d;
}

void MockEngine::advance(Clock::time_point now) {
  n_transfers_expired_ += static_cast<uint64_t>(transfers_.expire(now));
  for (size_t i = 0; i < fetching_.size();) {
    Sequence& s = *fetching_[i];
    const bool done = s.fetch_answered && s.ready_at <= now;
    const bool timed_out = !s.fetch_answered && s.fetch_deadline <= now;
    if (!done && !timed_out) {
      ++i;
      continue;
    }
    std::unique_ptr<Sequence> seq = std::move(fetching_[i]);
    fetching_.erase(fetching_.begin() + static_cast<ptrdiff_t>(i));
    if (done)
      finish_import(std::move(seq));
    else
      fall_back(std::move(seq), {StatusCode::kUnavailable, "KV fetch timed out"});
  }
}

void MockEngine::run_source_op(SourceOp& op) {
  if (!op.done) return transfers_.release(op.transfer_id);
  auto ids = transfers_.block_ids(op.transfer_id, op.first_block, op.n_blocks);
  if (!ids) return op.done(ids.status());
  op.done(std::string());  // simulated: the receiver models the bytes' time, none move
}

std::shared_ptr<const engine::KvTransferMeta> MockEngine::pin_transfer(Sequence& s) {
  const int bs = options_.block_size;
  if (s.n_computed <= 0) return nullptr;
  const size_t n_blocks = static_cast<size_t>((s.n_computed + bs - 1) / bs);
  const size_t n_full = static_cast<size_t>(s.n_computed / bs);
  kv::extend_block_hashes(s.hashes, s.tokens, bs);
  if (s.blocks.size() < n_blocks || s.hashes.sequence.size() < n_full) return nullptr;
  auto meta = std::make_shared<engine::KvTransferMeta>();
  meta->instance_id = options_.instance_id;
  meta->layout = kv_layout_;
  meta->num_tokens = s.n_computed;
  meta->block_hashes.assign(s.hashes.sequence.begin(),
                            s.hashes.sequence.begin() + static_cast<ptrdiff_t>(n_full));
  std::vector<kv::BlockRef> pinned;
  for (size_t i = 0; i < n_blocks; ++i) {
    meta->block_ids.push_back(s.blocks[i].id());
    pinned.push_back(std::move(s.blocks[i]));
  }
  meta->transfer_id = transfers_.pin(std::move(pinned), Clock::now() + options_.kv_transfer_ttl);
  return meta;
}

MockEngine::ImportStart MockEngine::begin_import(Sequence& s) {
  const engine::KvTransferMeta& m = *s.req.disagg.import;
  const int bs = options_.block_size;
  const size_t n_full = static_cast<size_t>(m.num_tokens / bs);
  const int n_import_blocks = (m.num_tokens + bs - 1) / bs;
  std::string why;
  if (!options_.kv_transfer) {
    why = "this engine has no KV transfer";
  } else if (!(m.layout == kv_layout_)) {
    why = "incompatible KV layouts";
  } else if (m.num_tokens < 1 || m.num_tokens >= static_cast<int>(s.tokens.size()) ||
             m.block_ids.size() != static_cast<size_t>(n_import_blocks) ||
             m.block_hashes.size() != n_full) {
    why = "the transfer does not match the prompt";
  } else {
    kv::extend_block_hashes(s.hashes, s.tokens, bs);
    for (size_t i = 0; i < n_full && why.empty(); ++i) {
      if (i >= s.hashes.sequence.size() || s.hashes.sequence[i] != m.block_hashes[i])
        why = "the transfer's block hashes do not match the prompt";
    }
  }
  if (!why.empty()) {
    spdlog::warn("mock engine: request {}: KV import refused ({}); prefilling locally", s.req.id,
                 why);
    s.import_tried = true;
    n_import_fallbacks_++;
    if (options_.kv_transfer) options_.kv_transfer->release(m);
    return ImportStart::kLocal;
  }
  const int first = s.n_computed / bs;  // blocks reused from the local prefix cache
  if (first >= n_import_blocks) {       // everything is cached here already
    s.import_tried = true;
    n_imports_++;
    n_import_reused_blocks_ += static_cast<uint64_t>(first);
    options_.kv_transfer->release(m);
    return ImportStart::kLocal;
  }
  if (!grow(s, m.num_tokens - s.n_computed)) return ImportStart::kNoBlocks;
  s.import_tried = true;
  s.fetch_gen = next_fetch_gen_++;
  s.fetch_answered = false;
  s.fetch_first = first;
  s.fetch_n = n_import_blocks - first;
  // The bytes take bytes / bandwidth of simulated time on this engine's inbound link, after the
  // fetches ahead of them.
  const double bytes =
      static_cast<double>(s.fetch_n) * static_cast<double>(kv_layout_.bytes_per_block);
  s.fetch_sim_s = bytes * 8.0 / (options_.kv_transfer_gbps * 1e9);
  const auto now = Clock::now();
  const auto wall = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(s.fetch_sim_s / options_.speedup));
  link_free_at_ = std::max(link_free_at_, now) + wall;
  s.ready_at = link_free_at_;
  s.fetch_deadline = now + options_.kv_fetch_timeout;
  options_.kv_transfer->fetch(m, first, s.fetch_n,
                              [mb = mailbox_, gen = s.fetch_gen](Result<std::string> data) {
                                std::lock_guard lock(mb->mu);
                                if (mb->engine == nullptr) return;
                                MockEngine* e = mb->engine;
                                {
                                  std::lock_guard inbox(e->mu_);
                                  e->fetched_.push_back({gen, std::move(data)});
                                }
                                e->cv_.notify_one();
                              });
  return ImportStart::kStarted;
}

void MockEngine::complete_fetch(uint64_t gen, Result<std::string> data) {
  auto it = std::find_if(fetching_.begin(), fetching_.end(),
                         [&](const auto& s) { return s->fetch_gen == gen; });
  if (it == fetching_.end()) return;  // timed out or cancelled before it came
  Sequence& s = **it;
  Status st = data.status();
  if (st.is_ok() && !data->empty() &&
      static_cast<int64_t>(data->size()) != int64_t{s.fetch_n} * kv_layout_.bytes_per_block) {
    st = internal_error("KV fetch returned " + std::to_string(data->size()) + " bytes for " +
                        std::to_string(s.fetch_n) + " blocks");
  }
  if (!st.is_ok()) {
    std::unique_ptr<Sequence> seq = std::move(*it);
    fetching_.erase(it);
    return fall_back(std::move(seq), st);
  }
  s.fetch_answered = true;  // the bytes arrive at ready_at (advance())
}

void MockEngine::finish_import(std::unique_ptr<Sequence> s) {
  const engine::KvTransferMeta& m = *s->req.disagg.import;
  const int bs = options_.block_size;
  options_.kv_transfer->release(m);
  s->fetch_gen = 0;
  s->n_computed = m.num_tokens;
  s->imported = true;
  const size_t n_full = static_cast<size_t>(s->n_computed / bs);
  if (n_full > s->n_registered) {
    kv::extend_block_hashes(s->hashes, s->tokens, bs);
    pool_.cache_full_blocks(std::span<const kv::BlockRef>(s->blocks).first(n_full), s->n_registered,
                            s->hashes, s->tokens);
    s->n_registered = n_full;
  }
  n_imports_++;
  n_import_fetched_blocks_ += static_cast<uint64_t>(s->fetch_n);
  n_import_reused_blocks_ += static_cast<uint64_t>(s->fetch_first);
  n_import_bytes_ +=
      static_cast<uint64_t>(s->fetch_n) * static_cast<uint64_t>(kv_layout_.bytes_per_block);
  import_seconds_ = import_seconds_.load() + s->fetch_sim_s;
  running_.push_back(std::move(s));
}

void MockEngine::fall_back(std::unique_ptr<Sequence> s, const Status& why) {
  spdlog::warn("mock engine: request {}: KV import failed ({}); prefilling locally", s->req.id,
               why.to_string());
  if (options_.kv_transfer) options_.kv_transfer->release(*s->req.disagg.import);
  s->fetch_gen = 0;
  free_blocks(*s);
  n_import_fallbacks_++;
  waiting_.push_front(std::move(s));
}

}  // namespace turbine::mock
