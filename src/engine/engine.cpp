#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <random>

#include <spdlog/spdlog.h>

namespace turbine::engine {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone: return "none";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "unknown";
}

Status EngineOptions::validate() const {
  if (max_num_batched_tokens < 1) {
    return invalid_argument("max_num_batched_tokens must be >= 1", "max_num_batched_tokens");
  }
  if (max_waiting < 1) return invalid_argument("max_waiting must be >= 1", "max_waiting");
  if (max_num_seqs < 1 || max_num_seqs > 4096)
    return invalid_argument("max_num_seqs must be in [1, 4096]", "max_num_seqs");
  if (kv_transfer_ttl.count() <= 0)
    return invalid_argument("kv_transfer_ttl must be > 0", "kv_transfer_ttl");
  if (kv_fetch_timeout.count() <= 0)
    return invalid_argument("kv_fetch_timeout must be > 0", "kv_fetch_timeout");
  return Status::ok();
}

// Invariants: blocks.size() == block_ids.size() >= ceil(n_computed / block_size); blocks
// [0, n_registered) were offered to the prefix cache; hashes cover full blocks of `tokens`.
struct Engine::Sequence {
  EngineRequest req;
  std::vector<int32_t> tokens;  // prompt followed by generated tokens
  int n_prompt = 0;
  int n_computed = 0;  // positions already in the KV blocks
  int n_generated = 0;
  int cached_tokens = -1;  // prompt tokens reused at first admission; -1 before it
  std::vector<kv::BlockRef> blocks;
  std::vector<int32_t> block_ids;  // the same blocks, as the backend's block table
  size_t n_registered = 0;
  kv::BlockHashes hashes;
  Sampler sampler;
  uint64_t seed = 0;  // the device sampler's: the request's seed, else a random one
  // KV import (req.disagg.import): tried once; while fetching, blocks [fetch_first, +fetch_n).
  bool import_tried = false;
  uint64_t fetch_gen = 0;  // non-zero while a fetch is in flight
  int fetch_first = 0;
  int fetch_n = 0;
  std::chrono::steady_clock::time_point fetch_start, fetch_deadline;

  Sequence(EngineRequest&& r, int32_t n_vocab, std::span<const int32_t> eos, uint64_t fallback_seed)
      : req(std::move(r)),
        tokens(req.prompt),
        n_prompt(static_cast<int>(req.prompt.size())),
        sampler(req.params, req.prompt, n_vocab, eos),
        seed(req.params.seed.value_or(fallback_seed)) {}
};

// Whether the backend may choose this sequence's next token on its device: only temperature,
// top-k and top-p (no logprobs, penalties, min-p), and nothing to mask (EOS and stop ids before
// min_tokens). The answer depends on the sequence alone, so a seeded request draws the same
// tokens whatever else is in the batch.
bool Engine::device_samplable(const Sequence& s) const {
  const SamplingParams& p = s.req.params;
  if (p.n_logprobs >= 0 || p.min_p > 0.0f || p.presence_penalty != 0.0f ||
      p.frequency_penalty != 0.0f || p.repetition_penalty != 1.0f)
    return false;
  const bool masks =
      !p.stop_token_ids.empty() || (!p.ignore_eos && !options_.eos_token_ids.empty());
  return !(masks && s.n_generated < p.min_tokens);
}

Engine::Engine(std::unique_ptr<Backend> backend, int32_t n_vocab, EngineOptions options)
    : backend_(std::move(backend)),
      n_vocab_(n_vocab),
      options_(std::move(options)),
      block_size_(std::max(1, backend_->block_size())),
      // A sequence can never hold more positions than the whole pool.
      max_context_(static_cast<int>(std::min<int64_t>(
          backend_->max_context(), int64_t{backend_->num_blocks()} * block_size_))),
      pool_(backend_->num_blocks(), block_size_, options_.enable_prefix_caching,
            options_.kv_event_sink),
      kv_layout_(backend_->kv_layout()),
      kv_pool_(backend_->kv_pool_descriptor()),
      mailbox_(std::make_shared<Mailbox>()) {
  mailbox_->engine = this;
  publish_stats();
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  shutdown();
}

Status Engine::submit(EngineRequest request) {
  const auto n = static_cast<int64_t>(request.prompt.size());
  if (n == 0) return invalid_argument("the prompt must contain at least one token", "prompt");
  if (n >= max_context_) {
    return invalid_argument("the prompt has " + std::to_string(n) +
                                " tokens; this model's maximum context length is " +
                                std::to_string(max_context_) +
                                " tokens, and at least one must be left for the completion",
                            "prompt");
  }
  for (int32_t t : request.prompt) {
    if (t < 0 || t >= n_vocab_) {
      return invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                                  std::to_string(n_vocab_) + ")",
                              "prompt");
    }
  }
  TURBINE_RETURN_IF_ERROR(request.params.validate());
  if (!request.on_output) return internal_error("engine request without an output callback");
  {
    std::lock_guard lock(mu_);
    if (stopping_) return {StatusCode::kUnavailable, "the server is shutting down"};
    if (static_cast<int>(inbox_.size()) + n_waiting_.load() >= options_.max_waiting) {
      return {StatusCode::kResourceExhausted, "too many queued requests; retry later"};
    }
    inbox_.push_back(std::move(request));
  }
  cv_.notify_one();
  return Status::ok();
}

void Engine::cancel(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    cancels_.insert(id);
  }
  cv_.notify_one();
}

void Engine::stop(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    cancels_.insert(id);
    stops_.insert(id);
  }
  cv_.notify_one();
}

void Engine::shutdown() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mailbox_->mu);
  mailbox_->engine = nullptr;
}

void Engine::read_transfer(uint64_t transfer_id, int first_block, int n_blocks,
                           KvBytesCallback done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      source_ops_.push_back({transfer_id, first_block, n_blocks, std::move(done)});
      done = nullptr;
    }
  }
  if (done) {
    done(Status{StatusCode::kUnavailable, "the prefill engine is shutting down"});
    return;
  }
  cv_.notify_one();
}

void Engine::release_transfer(uint64_t transfer_id) {
  {
    std::lock_guard lock(mu_);
    source_ops_.push_back({transfer_id, 0, 0, nullptr});
  }
  cv_.notify_one();
}

EngineStats Engine::stats() const {
  EngineStats s;
  s.running = n_running_.load();
  s.waiting = n_waiting_.load();
  s.steps = n_steps_.load();
  s.cancelled = n_cancelled_.load();
  s.prompt_tokens = n_prompt_tokens_.load();
  s.generated_tokens = n_generated_tokens_.load();
  s.kv_total_blocks = pool_.num_blocks();
  s.kv_block_size = block_size_;
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
  s.kv_device_imports = n_device_imports_.load();
  s.kv_import_device_bytes = n_import_device_bytes_.load();
  s.kv_import_device_seconds = import_device_seconds_.load();
  if (options_.kv_transfer) s.kv_transports = options_.kv_transfer->transport_stats();
  const uint64_t device_failures = n_device_import_failures_.load();
  if (s.kv_device_imports + device_failures > 0) {
    s.kv_transports.push_back({"cuda_ipc", s.kv_device_imports + device_failures, device_failures,
                               s.kv_import_device_bytes, s.kv_import_device_seconds});
  }
  return s;
}

void Engine::publish_stats() {
  n_running_ = static_cast<int>(running_.size());
  n_waiting_ = static_cast<int>(waiting_.size() + fetching_.size());
  kv_used_blocks_ = pool_.num_blocks() - pool_.num_free();
  n_transfers_pinned_ = transfers_.size();
  n_transfer_pinned_blocks_ = transfers_.pinned_blocks();
}

void Engine::free_blocks(Sequence& seq) {
  kv::BlockPool::release(seq.blocks);
  seq.block_ids.clear();
  seq.n_registered = 0;
  seq.n_computed = 0;
}

void Engine::finish(Sequence& seq, FinishReason reason, Status error) {
  EngineOutput out;
  out.finish = reason;
  out.error = std::move(error);
  out.prompt_tokens = seq.n_prompt;
  out.completion_tokens = seq.n_generated;
  out.cached_tokens = std::max(0, seq.cached_tokens);
  if (reason == FinishReason::kCancelled) n_cancelled_++;
  seq.req.on_output(std::move(out));
}

void Engine::loop() {
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
    for (auto& f : fetched) complete_fetch(std::move(f));
    expire(Clock::now());
    for (auto& r : incoming) {
      n_prompt_tokens_ += r.prompt.size();
      waiting_.push_back(
          std::make_unique<Sequence>(std::move(r), n_vocab_, options_.eos_token_ids, seed_rng_()));
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

bool Engine::grow(Sequence& seq, int n_tokens) {
  const int needed = (seq.n_computed + n_tokens + block_size_ - 1) / block_size_;
  const int extra = needed - static_cast<int>(seq.blocks.size());
  if (extra <= 0) return true;
  auto fresh = pool_.allocate(extra);
  if (!fresh) return false;
  for (auto& b : *fresh) {
    seq.block_ids.push_back(b.id());
    seq.blocks.push_back(std::move(b));
  }
  return true;
}

// Preempts the newest running sequence: recomputation later, blocks freed now. If it was already
// planned for this step, its plan entry and token budget are handed back.
void Engine::preempt(std::vector<Planned>& plan, int& budget) {
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

std::vector<Engine::Planned> Engine::schedule() {
  std::vector<Planned> plan;
  int budget = options_.max_num_batched_tokens;
  bool preempted = false;
  // Running sequences: decodes first, then prefill chunks, each pass oldest first.
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
      if (self_preempted) break;  // s was the newest: nothing after it runs either
      plan.push_back({s, n});
      budget -= n;
    }
  }
  // Waiting sequences, FCFS, unless this step had to preempt.
  while (!preempted && budget > 0 && !waiting_.empty() &&
         static_cast<int>(running_.size() + fetching_.size()) < options_.max_num_seqs) {
    Sequence* s = waiting_.front().get();
    kv::extend_block_hashes(s->hashes, s->tokens, block_size_);
    // At least the last token is computed, so its block is never taken from the cache.
    const size_t max_hit = std::min(s->hashes.sequence.size(),
                                    (s->tokens.size() - 1) / static_cast<size_t>(block_size_));
    std::vector<kv::BlockRef> hit =
        pool_.match_prefix(std::span<const uint64_t>(s->hashes.sequence).first(max_hit));
    const int n_hit = static_cast<int>(hit.size()) * block_size_;
    for (auto& b : hit) {
      s->block_ids.push_back(b.id());
      s->blocks.push_back(std::move(b));
    }
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
      break;  // no overtaking: later requests wait too
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

bool Engine::step() {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Planned> plan = schedule();
  if (plan.empty()) {
    if (running_.empty() && !waiting_.empty() && fetching_.empty() && transfers_.empty()) {
      // Cannot happen while max_context_ fits the pool (an idle pool holds any one request);
      // refuse the request rather than spin.
      std::unique_ptr<Sequence> s = std::move(waiting_.front());
      waiting_.pop_front();
      spdlog::error("engine: request {} does not fit the KV cache", s->req.id);
      free_blocks(*s);
      finish(*s, FinishReason::kError,
             {StatusCode::kResourceExhausted, "the request does not fit the KV cache"});
      return true;  // progress: look at the next waiting request without waiting for an event
    }
    return false;
  }
  std::vector<SeqChunk> chunks;
  chunks.reserve(plan.size());
  int n_tokens = 0;
  for (const Planned& p : plan) {
    Sequence& s = *p.seq;
    chunks.push_back(
        {s.block_ids, s.n_computed,
         std::span<const int32_t>(s.tokens.data() + s.n_computed, static_cast<size_t>(p.n_tokens)),
         s.n_computed + p.n_tokens == static_cast<int>(s.tokens.size())});
    n_tokens += p.n_tokens;
  }

  // Rows the backend samples on its device (when it can) send back a token id instead of
  // n_vocab logits; the others are sampled here.
  std::vector<float> logits;
  std::vector<int32_t> device_tokens;
  std::vector<RowSampling> rows;
  if (backend_->supports_sampling()) {
    bool any = false;
    for (size_t i = 0; i < plan.size(); ++i) {
      if (!chunks[i].want_logits) continue;
      const Sequence& s = *plan[i].seq;
      RowSampling r;
      r.on_host = !device_samplable(s);
      r.temperature = s.req.params.temperature;
      r.top_k = s.req.params.top_k;
      r.top_p = s.req.params.top_p;
      r.seed = s.seed;
      r.step = static_cast<uint64_t>(s.n_generated);
      any = any || !r.on_host;
      rows.push_back(r);
    }
    if (!any) rows.clear();
  }
  Status st = rows.empty() ? backend_->forward(chunks, logits)
                           : backend_->forward_sample(chunks, rows, device_tokens, logits);
  if (st.is_ok() && !rows.empty()) {
    size_t n_host = 0;
    bool in_vocab = device_tokens.size() == rows.size();
    for (size_t r = 0; r < rows.size() && in_vocab; ++r) {
      if (rows[r].on_host)
        ++n_host;
      else
        in_vocab = device_tokens[r] >= 0 && device_tokens[r] < n_vocab_;
    }
    if (!in_vocab || logits.size() != n_host * static_cast<size_t>(n_vocab_))
      st = internal_error("the backend's sampled tokens or logits do not match the step");
  }
  n_steps_++;
  std::vector<Sequence*> done;
  std::vector<FinishReason> reasons;
  if (!st.is_ok()) {
    spdlog::error("engine step failed: {}", st.to_string());
    for (const Planned& p : plan) {
      done.push_back(p.seq);
      reasons.push_back(FinishReason::kError);
    }
  } else {
    size_t row = 0, host_row = 0;
    for (size_t i = 0; i < plan.size(); ++i) {
      Sequence& s = *plan[i].seq;
      s.n_computed += plan[i].n_tokens;
      // Newly full blocks enter the prefix cache.
      const size_t n_full = static_cast<size_t>(s.n_computed / block_size_);
      if (n_full > s.n_registered) {
        kv::extend_block_hashes(s.hashes, s.tokens, block_size_);
        pool_.cache_full_blocks(std::span<const kv::BlockRef>(s.blocks).first(n_full),
                                s.n_registered, s.hashes, s.tokens);
        s.n_registered = n_full;
      }
      if (!chunks[i].want_logits) continue;
      SampledToken tok;
      if (!rows.empty() && !rows[row].on_host) {
        tok.token = device_tokens[row];
      } else {
        std::span<float> row_logits(logits.data() + host_row * static_cast<size_t>(n_vocab_),
                                    static_cast<size_t>(n_vocab_));
        ++host_row;
        tok = s.sampler.sample(row_logits);
      }
      ++row;
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
      if (reason != FinishReason::kNone) {
        done.push_back(&s);
        reasons.push_back(FinishReason::kNone);  // the output below already carries the finish
      }
      s.req.on_output(std::move(out));
    }
  }
  for (size_t i = 0; i < done.size(); ++i) {
    Sequence* s = done[i];
    if (reasons[i] == FinishReason::kError) finish(*s, FinishReason::kError, st);
    free_blocks(*s);
    auto it =
        std::find_if(running_.begin(), running_.end(), [&](const auto& p) { return p.get() == s; });
    running_.erase(it);
  }
  last_batch_size_ = static_cast<int>(plan.size());
  last_step_tokens_ = n_tokens;
  last_step_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return true;
}

// ---- disaggregated serving (engine/kv_transfer.h) ---------------------------------------------

std::optional<Engine::Clock::time_point> Engine::next_deadline() const {
  std::optional<Clock::time_point> d;
  auto take = [&](Clock::time_point t) {
    if (!d || t < *d) d = t;
  };
  for (const auto& s : fetching_) take(s->fetch_deadline);
  if (auto e = transfers_.next_expiry()) take(*e);
  return d;
}

void Engine::expire(Clock::time_point now) {
  n_transfers_expired_ += static_cast<uint64_t>(transfers_.expire(now));
  for (size_t i = 0; i < fetching_.size();) {
    if (fetching_[i]->fetch_deadline <= now) {
      std::unique_ptr<Sequence> s = std::move(fetching_[i]);
      fetching_.erase(fetching_.begin() + static_cast<ptrdiff_t>(i));
      fall_back(std::move(s), {StatusCode::kUnavailable, "KV fetch timed out"});
    } else {
      ++i;
    }
  }
}

void Engine::run_source_op(SourceOp& op) {
  if (!op.done) return transfers_.release(op.transfer_id);
  auto ids = transfers_.block_ids(op.transfer_id, op.first_block, op.n_blocks);
  if (!ids) return op.done(ids.status());
  std::string bytes;
  Status st = backend_->read_kv_blocks(*ids, bytes);
  if (!st.is_ok()) {
    op.done(std::move(st));
    return;
  }
  op.done(std::move(bytes));
}

std::shared_ptr<const KvTransferMeta> Engine::pin_transfer(Sequence& s) {
  if (!kv_layout_.exportable() || s.n_computed <= 0) return nullptr;
  auto meta = std::make_shared<KvTransferMeta>();
  meta->instance_id = options_.instance_id;
  meta->layout = kv_layout_;
  meta->num_tokens = s.n_computed;
  const size_t n_blocks = static_cast<size_t>((s.n_computed + block_size_ - 1) / block_size_);
  const size_t n_full = static_cast<size_t>(s.n_computed / block_size_);
  kv::extend_block_hashes(s.hashes, s.tokens, block_size_);
  if (s.blocks.size() < n_blocks || s.hashes.sequence.size() < n_full) return nullptr;
  meta->block_ids.assign(s.block_ids.begin(),
                         s.block_ids.begin() + static_cast<ptrdiff_t>(n_blocks));
  meta->block_hashes.assign(s.hashes.sequence.begin(),
                            s.hashes.sequence.begin() + static_cast<ptrdiff_t>(n_full));
  meta->device_pool = kv_pool_;
  std::vector<kv::BlockRef> pinned;
  for (size_t i = 0; i < n_blocks; ++i) pinned.push_back(std::move(s.blocks[i]));
  meta->transfer_id = transfers_.pin(std::move(pinned), Clock::now() + options_.kv_transfer_ttl);
  // The sequence's remaining handles (none in practice) are freed with it.
  return meta;
}

Engine::ImportStart Engine::begin_import(Sequence& s) {
  const KvTransferMeta& m = *s.req.disagg.import;
  const int bs = block_size_;
  const size_t n_full = static_cast<size_t>(m.num_tokens / std::max(1, bs));
  const int n_import_blocks = (m.num_tokens + bs - 1) / bs;
  std::string why;
  if (!options_.kv_transfer) {
    why = "this engine has no KV transfer";
  } else if (!kv_layout_.exportable() || !(m.layout == kv_layout_)) {
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
    spdlog::warn("engine: request {}: KV import refused ({}); prefilling locally", s.req.id, why);
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
  s.fetch_first = first;
  s.fetch_n = n_import_blocks - first;
  s.fetch_start = Clock::now();
  s.fetch_deadline = s.fetch_start + options_.kv_fetch_timeout;
  if (options_.kv_device_import && !m.device_pool.empty()) {
    // Copied device to device between steps (complete_fetch), in the order fetches complete.
    std::lock_guard inbox(mu_);
    fetched_.push_back({s.fetch_gen, std::string(), true});
    return ImportStart::kStarted;
  }
  start_fetch(s);
  return ImportStart::kStarted;
}

void Engine::start_fetch(Sequence& s) {
  const KvTransferMeta& m = *s.req.disagg.import;
  options_.kv_transfer->fetch(m, s.fetch_first, s.fetch_n,
                              [mb = mailbox_, gen = s.fetch_gen](Result<std::string> data) {
                                std::lock_guard lock(mb->mu);
                                if (mb->engine == nullptr) return;
                                Engine* e = mb->engine;
                                {
                                  std::lock_guard inbox(e->mu_);
                                  e->fetched_.push_back({gen, std::move(data)});
                                }
                                e->cv_.notify_one();
                              });
}

bool Engine::copy_from_device_pool(Sequence& s) {
  const KvTransferMeta& m = *s.req.disagg.import;
  const auto first = static_cast<size_t>(s.fetch_first), n = static_cast<size_t>(s.fetch_n);
  Status st = backend_->copy_kv_blocks_from_pool(
      m.device_pool, std::span<const int32_t>(m.block_ids).subspan(first, n),
      std::span<const int32_t>(s.block_ids).subspan(first, n),
      m.num_tokens - s.fetch_first * block_size_);
  if (st.is_ok()) return true;
  n_device_import_failures_++;
  if (!device_import_warned_) {  // once: it is a property of the deployment, not of a request
    spdlog::warn("engine: device-to-device KV import not possible ({}); fetching bytes instead",
                 st.to_string());
    device_import_warned_ = true;
  }
  return false;
}

void Engine::complete_fetch(Fetched f) {
  auto it = std::find_if(fetching_.begin(), fetching_.end(),
                         [&](const auto& s) { return s->fetch_gen == f.gen; });
  if (it == fetching_.end()) return;  // timed out or cancelled before it came
  if (f.direct) {
    if (copy_from_device_pool(**it)) {
      std::unique_ptr<Sequence> s = std::move(*it);
      fetching_.erase(it);
      const uint64_t bytes =
          static_cast<uint64_t>(s->fetch_n) * static_cast<uint64_t>(kv_layout_.bytes_per_block);
      return finish_import(std::move(s), bytes, true);
    }
    start_fetch(**it);  // same generation and deadline: the sequence stays in fetching_
    return;
  }
  std::unique_ptr<Sequence> s = std::move(*it);
  fetching_.erase(it);
  const KvTransferMeta& m = *s->req.disagg.import;
  Result<std::string>& data = f.data;
  Status st = data.status();
  if (st.is_ok() &&
      static_cast<int64_t>(data->size()) != int64_t{s->fetch_n} * kv_layout_.bytes_per_block) {
    st = internal_error("KV fetch returned " + std::to_string(data->size()) + " bytes for " +
                        std::to_string(s->fetch_n) + " blocks");
  }
  if (st.is_ok()) {
    st = backend_->write_kv_blocks(
        std::span<const int32_t>(s->block_ids)
            .subspan(static_cast<size_t>(s->fetch_first), static_cast<size_t>(s->fetch_n)),
        *data, m.num_tokens - s->fetch_first * block_size_);
  }
  if (!st.is_ok()) return fall_back(std::move(s), st);
  finish_import(std::move(s), data->size(), false);
}

void Engine::finish_import(std::unique_ptr<Sequence> s, uint64_t bytes, bool device) {
  const KvTransferMeta& m = *s->req.disagg.import;
  options_.kv_transfer->release(m);
  s->fetch_gen = 0;
  s->n_computed = m.num_tokens;
  const size_t n_full = static_cast<size_t>(s->n_computed / block_size_);
  if (n_full > s->n_registered) {
    kv::extend_block_hashes(s->hashes, s->tokens, block_size_);
    pool_.cache_full_blocks(std::span<const kv::BlockRef>(s->blocks).first(n_full), s->n_registered,
                            s->hashes, s->tokens);
    s->n_registered = n_full;
  }
  n_imports_++;
  n_import_fetched_blocks_ += static_cast<uint64_t>(s->fetch_n);
  n_import_reused_blocks_ += static_cast<uint64_t>(s->fetch_first);
  const double seconds = std::chrono::duration<double>(Clock::now() - s->fetch_start).count();
  n_import_bytes_ += bytes;
  import_seconds_ = import_seconds_.load() + seconds;
  if (device) {
    n_device_imports_++;
    n_import_device_bytes_ += bytes;
    import_device_seconds_ = import_device_seconds_.load() + seconds;
  }
  running_.push_back(std::move(s));
}

void Engine::fall_back(std::unique_ptr<Sequence> s, const Status& why) {
  spdlog::warn("engine: request {}: KV import failed ({}); prefilling locally", s->req.id,
               why.to_string());
  if (options_.kv_transfer) options_.kv_transfer->release(*s->req.disagg.import);
  s->fetch_gen = 0;
  free_blocks(*s);
  n_import_fallbacks_++;
  waiting_.push_front(std::move(s));
}

}  // namespace turbine::engine
