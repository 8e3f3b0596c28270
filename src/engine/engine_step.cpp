// Engine: one step. Scheduling through the policy of engine/scheduler.h, the forward pass,
// sampling, stop conditions and prefix-cache registration.
#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "engine/engine.h"
#include "engine/engine_sequence.h"
#include "engine/scheduler.h"

namespace turbine::engine {

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

// The policy's view of this engine's KV cache: acts on the pool at once.
class Engine::SchedulerView final : public SchedulerKv {
 public:
  SchedulerView(Engine& e, std::vector<Sequence*>& seqs) : e_(e), seqs_(seqs) {}

  bool allocate(size_t seq, int n) override {
    Sequence& s = *seqs_[seq];
    auto fresh = e_.pool_.allocate(n);
    if (!fresh) return false;
    for (auto& b : *fresh) {
      s.block_ids.push_back(b.id());
      s.blocks.push_back(std::move(b));
    }
    return true;
  }
  void free(size_t seq) override { e_.free_blocks(*seqs_[seq]); }
  Started start(size_t seq, int max_cached_blocks) override {
    Sequence& s = *seqs_[seq];
    const int bs = e_.block_size_;
    kv::extend_block_hashes(s.hashes, s.tokens, bs);
    // Cached positions have no logits: a sequence that still owes its prompt logprobs computes
    // its whole prompt (it still offers its own blocks to the cache).
    const int max_blocks = s.wants_prompt_lp() ? 0 : std::max(0, max_cached_blocks);
    const size_t max_hit = std::min(s.hashes.sequence.size(), static_cast<size_t>(max_blocks));
    std::vector<kv::BlockRef> hit =
        e_.pool_.match_prefix(std::span<const uint64_t>(s.hashes.sequence).first(max_hit));
    s.n_hit = static_cast<int>(hit.size()) * bs;
    for (auto& b : hit) {
      s.block_ids.push_back(b.id());
      s.blocks.push_back(std::move(b));
    }
    s.n_computed = s.n_hit;
    s.n_registered = s.blocks.size();
    Started st;
    if (s.req.disagg.import && !s.import_tried && !s.wants_prompt_lp()) {
      const ImportStart started = e_.begin_import(s);
      if (started == ImportStart::kNoBlocks) st.kind = Started::Kind::kBlocked;
      if (started == ImportStart::kStarted) st.kind = Started::Kind::kFetch;
    }
    st.n_computed = s.n_computed;
    st.n_blocks = static_cast<int>(s.blocks.size());
    return st;
  }

 private:
  Engine& e_;
  std::vector<Sequence*>& seqs_;
};

std::vector<Engine::Planned> Engine::schedule() {
  // Only as many waiting sequences as there are free slots can start.
  const int slots = options_.max_num_seqs - static_cast<int>(running_.size() + fetching_.size());
  const size_t n_heads = std::min(waiting_.size(), static_cast<size_t>(std::max(0, slots)));
  std::vector<Sequence*> seqs;
  std::vector<SchedSeq> states;
  seqs.reserve(running_.size() + n_heads);
  states.reserve(running_.size() + n_heads);
  for (const auto& s : running_) {
    seqs.push_back(s.get());
    states.push_back(
        {static_cast<int>(s->tokens.size()), s->n_computed, static_cast<int>(s->blocks.size())});
  }
  for (size_t k = 0; k < n_heads; ++k) {
    seqs.push_back(waiting_[k].get());
    states.push_back({static_cast<int>(waiting_[k]->tokens.size()), 0,
                      static_cast<int>(waiting_[k]->blocks.size())});
  }
  ScheduleInput in;
  in.running = std::span<const SchedSeq>(states).first(running_.size());
  in.waiting = std::span<const SchedSeq>(states).subspan(running_.size());
  in.n_fetching = static_cast<int>(fetching_.size());
  in.token_budget = options_.max_num_batched_tokens;
  in.max_num_seqs = options_.max_num_seqs;
  in.block_size = block_size_;
  SchedulerView view(*this, seqs);
  const SchedulePlan plan = engine::schedule(in, view);

  // Preempted: newest first, each to the queue's front (so the oldest of them ends up first).
  for ([[maybe_unused]] size_t i : plan.preempted) {
    waiting_.push_front(std::move(running_.back()));
    running_.pop_back();
    stats_.preemptions++;
  }
  // Started: the queue's first started + fetching sequences, in order.
  const size_t n_started = plan.started.size() + plan.fetching.size();
  size_t next_fetching = 0;
  for (size_t k = 0; k < n_started; ++k) {
    std::unique_ptr<Sequence> s = std::move(waiting_.front());
    waiting_.pop_front();
    stats_.prefix_cache_queried_tokens += s->tokens.size();
    stats_.prefix_cache_hit_tokens += static_cast<uint64_t>(s->n_hit);
    if (s->cached_tokens < 0) s->cached_tokens = std::min(s->n_hit, s->n_prompt);
    if (next_fetching < plan.fetching.size() &&
        plan.fetching[next_fetching] == in.running.size() + k) {
      ++next_fetching;
      fetching_.push_back(std::move(s));
    } else {
      running_.push_back(std::move(s));
    }
  }
  std::vector<Planned> out;
  out.reserve(plan.chunks.size());
  for (const ScheduledChunk& c : plan.chunks) out.push_back({seqs[c.seq], c.n_tokens});
  return out;
}

Status Engine::forward(const std::vector<Planned>& plan, std::span<const SeqChunk> chunks,
                       std::vector<SampledToken>& sampled) {
  sampled.clear();
  if (std::any_of(chunks.begin(), chunks.end(), [](const SeqChunk& c) { return c.all_logits; }))
    return forward_all_logits(plan, chunks, sampled);
  // A backend that samples every row itself: no logits at all.
  if (backend_->samples_all_rows()) {
    std::vector<SampleRow> rows;
    for (size_t i = 0; i < plan.size(); ++i) {
      if (!chunks[i].want_logits) continue;
      const Sequence& s = *plan[i].seq;
      SampleRow r;
      r.params = &s.req.params;
      r.seed = s.seed;
      r.prompt_hash = s.prompt_hash;
      r.n_generated = s.n_generated;
      if (s.n_generated < s.req.params.min_tokens) r.suppressed = s.suppressed;
      rows.push_back(r);
    }
    TURBINE_RETURN_IF_ERROR(backend_->forward_sample_all(chunks, rows, sampled));
    bool ok = sampled.size() == rows.size();
    for (size_t r = 0; r < sampled.size() && ok; ++r)
      ok = sampled[r].token >= 0 && sampled[r].token < n_vocab_;
    if (!ok) return internal_error("the backend's sampled tokens do not match the step");
    return Status::ok();
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
  TURBINE_RETURN_IF_ERROR(st);
  size_t n_rows = 0;
  for (const SeqChunk& c : chunks) n_rows += c.want_logits ? 1 : 0;
  size_t n_host = n_rows;
  bool in_vocab = true;
  if (!rows.empty()) {
    n_host = 0;
    in_vocab = device_tokens.size() == rows.size();
    for (size_t r = 0; r < rows.size() && in_vocab; ++r) {
      if (rows[r].on_host)
        ++n_host;
      else
        in_vocab = device_tokens[r] >= 0 && device_tokens[r] < n_vocab_;
    }
  }
  if (!in_vocab || logits.size() != n_host * static_cast<size_t>(n_vocab_))
    return internal_error("the backend's sampled tokens or logits do not match the step");
  size_t row = 0, host_row = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    if (!chunks[i].want_logits) continue;
    Sequence& s = *plan[i].seq;
    if (!rows.empty() && !rows[row].on_host) {
      SampledToken tok;
      tok.token = device_tokens[row];
      sampled.push_back(std::move(tok));
    } else {
      std::span<float> row_logits(logits.data() + host_row * static_cast<size_t>(n_vocab_),
                                  static_cast<size_t>(n_vocab_));
      ++host_row;
      sampled.push_back(s.sampler->sample(row_logits));
    }
    ++row;
  }
  return Status::ok();
}

Status Engine::forward_all_logits(const std::vector<Planned>& plan,
                                  std::span<const SeqChunk> chunks,
                                  std::vector<SampledToken>& sampled) {
  std::vector<float> logits;
  TURBINE_RETURN_IF_ERROR(backend_->forward(chunks, logits));
  size_t n_rows = 0;
  for (const SeqChunk& c : chunks) n_rows += c.all_logits ? c.tokens.size() : c.want_logits;
  const auto nv = static_cast<size_t>(n_vocab_);
  if (logits.size() != n_rows * nv)
    return internal_error("the backend's logits do not match the step");
  size_t row = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const SeqChunk& c = chunks[i];
    Sequence& s = *plan[i].seq;
    if (c.all_logits) {
      // The logits of position p score token p + 1; the last prompt position's are the first
      // generated token's, sampled below.
      for (size_t j = 0; j < c.tokens.size(); ++j) {
        const size_t p = static_cast<size_t>(c.pos) + j;
        if (p + 1 < static_cast<size_t>(s.n_prompt) && p == s.prompt_lp.size()) {
          s.prompt_lp.push_back(
              score_token(std::span<const float>(logits.data() + (row + j) * nv, nv),
                          s.tokens[p + 1], s.req.params.prompt_logprobs));
        }
      }
      row += c.tokens.size();
      if (c.want_logits)
        sampled.push_back(s.sampler->sample(std::span<float>(logits.data() + (row - 1) * nv, nv)));
    } else if (c.want_logits) {
      sampled.push_back(s.sampler->sample(std::span<float>(logits.data() + row * nv, nv)));
      ++row;
    }
  }
  return Status::ok();
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
      retired_.push_back(std::move(s));
      return true;  // progress: look at the next waiting request without waiting for an event
    }
    return false;
  }
  std::vector<SeqChunk> chunks;
  chunks.reserve(plan.size());
  int n_tokens = 0;
  for (const Planned& p : plan) {
    Sequence& s = *p.seq;
    // max_tokens 0 (prompt scoring) samples nothing.
    chunks.push_back(
        {s.block_ids, s.n_computed,
         std::span<const int32_t>(s.tokens.data() + s.n_computed, static_cast<size_t>(p.n_tokens)),
         s.n_computed + p.n_tokens == static_cast<int>(s.tokens.size()) &&
             s.req.params.max_tokens > 0,
         s.wants_prompt_lp()});
    n_tokens += p.n_tokens;
  }
  std::vector<SampledToken> sampled;
  const Status st = forward(plan, chunks, sampled);
  stats_.steps++;
  std::vector<Sequence*> done;
  if (!st.is_ok()) {
    spdlog::error("engine step failed: {}", st.to_string());
    for (const Planned& p : plan) {
      finish(*p.seq, FinishReason::kError, st);
      done.push_back(p.seq);
    }
  } else {
    size_t row = 0;
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
      if (!chunks[i].want_logits) {
        if (s.req.params.max_tokens == 0 && s.n_computed == s.n_prompt) {
          // A scoring request: the prompt is done, nothing is generated.
          EngineOutput out;
          out.prompt_logprobs = std::move(s.prompt_lp);
          s.prompt_lp_sent = true;
          out.finish = FinishReason::kLength;
          out.prompt_tokens = s.n_prompt;
          out.cached_tokens = std::max(0, s.cached_tokens);
          done.push_back(&s);
          outbox_.emplace_back(&s, std::move(out));
        }
        continue;
      }
      SampledToken tok = std::move(sampled[row++]);
      const int32_t id = tok.token;
      s.tokens.push_back(id);
      s.n_generated++;
      stats_.generated_tokens++;

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
      if (s.wants_prompt_lp()) {
        out.prompt_logprobs = std::move(s.prompt_lp);
        s.prompt_lp_sent = true;
      }
      out.tokens.push_back(std::move(tok));
      out.finish = reason;
      out.prompt_tokens = s.n_prompt;
      out.completion_tokens = s.n_generated;
      out.cached_tokens = std::max(0, s.cached_tokens);
      if (reason != FinishReason::kNone) done.push_back(&s);
      outbox_.emplace_back(&s, std::move(out));
    }
  }
  for (Sequence* s : done) {
    free_blocks(*s);
    auto it =
        std::find_if(running_.begin(), running_.end(), [&](const auto& p) { return p.get() == s; });
    retired_.push_back(std::move(*it));
    running_.erase(it);
  }
  stats_.last_step_batch_size = static_cast<int>(plan.size());
  stats_.last_step_tokens = n_tokens;
  const double modelled = backend_->last_step_seconds();
  stats_.last_step_seconds =
      modelled >= 0 ? modelled
                    : std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return true;
}

}  // namespace turbine::engine
