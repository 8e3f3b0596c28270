// Engine: one step. Scheduling through the policy of engine/scheduler.h, the forward pass,
// sampling, stop conditions and prefix-cache registration.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

#include <spdlog/spdlog.h>

#include "engine/engine.h"
#include "engine/engine_sequence.h"
#include "engine/scheduler.h"

namespace turbine::engine {
namespace {

// Structured outputs within the token budget: a constrained output that can still be completed
// within max_tokens (and the context) stays completable. Invariant: cost <= budget, where budget
// = the tokens left including this one and cost = the shortest completion in bytes + 1 for EOS
// (0 once terminated): with a single-byte token for every byte, a completion of n bytes takes at
// most n tokens. A sampled token that would break it is replaced by the first byte of the
// shortest completion, which lowers the cost by exactly one, so the output ends with `stop`, not
// `length`. Only near the end of the budget does this change anything; it costs one accept +
// rollback per step. Not with ignore_eos (EOS would not end the output). The replaced token keeps
// the sampled token's logprobs. `budget`: the tokens left including this one; `byte_tokens`:
// built on first use from `vocab`.
void steer_to_finish(structured::Matcher& m, const SamplingParams& p, int64_t budget,
                     std::span<const int32_t> eos, const structured::Vocabulary& vocab,
                     int32_t n_vocab, std::vector<int32_t>& byte_tokens, SampledToken& tok) {
  if (p.ignore_eos || eos.empty()) return;
  // Inside the reasoning (or its opening marker) nothing is constrained and no budget is kept:
  // output cut off there ends with `length` (as in vLLM).
  using Phase = structured::Matcher::Phase;
  if (m.phase() == Phase::kReasoning || m.phase() == Phase::kOpening) return;
  auto cost = [&] { return m.is_terminated() ? int64_t{0} : m.min_completion_bytes() + 1; };
  if (cost() > budget) return;  // cannot be completed any more: it ends with `length`
  const auto& stops = p.stop_token_ids;
  if (std::find(eos.begin(), eos.end(), tok.token) != eos.end() ||
      std::find(stops.begin(), stops.end(), tok.token) != stops.end())
    return;
  if (!m.accept_token(tok.token)) return;  // step() reports it
  if (m.phase() != Phase::kGrammar) {      // the token opened a reasoning block
    m.rollback(1);
    return;
  }
  const int64_t after = cost();
  m.rollback(1);
  if (after <= budget - 1) return;
  int32_t forced = -1;
  if (m.min_completion_bytes() == 0) {
    forced = eos.front();
  } else {
    if (byte_tokens.empty()) {
      byte_tokens.assign(256, -1);
      for (int32_t id = 0; id < vocab.size(); ++id) {
        const std::string& b = vocab.bytes(id);
        if (b.size() == 1 && byte_tokens[static_cast<uint8_t>(b[0])] < 0)
          byte_tokens[static_cast<uint8_t>(b[0])] = id;
      }
    }
    const std::string next = m.completion_bytes(1);
    if (!next.empty()) forced = byte_tokens[static_cast<uint8_t>(next[0])];
  }
  if (forced < 0 || forced >= n_vocab) return;  // no single-byte token: may end with `length`
  tok.token = forced;
}

}  // namespace

// Whether the backend may choose this sequence's next token on its device: only temperature,
// top-k, top-p and a short logit_bias (no logprobs, penalties, min-p), and nothing to mask (EOS and
// stop ids before min_tokens). The answer depends on the sequence alone, so a seeded request draws
// the same tokens whatever else is in the batch.
bool Engine::device_samplable(const Sequence& s) const {
  const SamplingParams& p = s.req.params;
  if (p.n_logprobs >= 0 || p.min_p > 0.0f || p.presence_penalty != 0.0f ||
      p.frequency_penalty != 0.0f || p.repetition_penalty != 1.0f ||
      p.logit_bias.size() > kMaxDeviceLogitBias)
    return false;
  if (s.masked() && !backend_->supports_sampling_mask()) return false;
  const bool masks =
      !p.stop_token_ids.empty() || (!p.ignore_eos && !options_.eos_token_ids.empty());
  return !(masks && s.n_generated < p.min_tokens);
}

bool Engine::fill_mask(Sequence& s) const {
  const size_t words = (static_cast<size_t>(n_vocab_) + 31) / 32;
  s.mask.assign(words, 0);
  // make_matcher checked that the grammar's vocabulary is no larger than the logits.
  s.matcher->fill_next_token_bitmask(s.mask.data());
  // The engine's EOS and the request's stop ids end the output: only where it may end.
  const SamplingParams& p = s.req.params;
  const bool may_end = s.matcher->can_terminate();
  auto set = [&](int32_t id, bool on) {
    if (id < 0 || id >= n_vocab_) return;
    const uint32_t bit = 1u << (id & 31);
    if (on)
      s.mask[static_cast<size_t>(id) >> 5] |= bit;
    else
      s.mask[static_cast<size_t>(id) >> 5] &= ~bit;
  };
  for (int32_t id : options_.eos_token_ids) set(id, may_end && !p.ignore_eos);
  for (int32_t id : p.stop_token_ids) set(id, may_end);
  return std::any_of(s.mask.begin(), s.mask.end(), [](uint32_t w) { return w != 0; });
}

void Engine::fill_masks(std::span<Sequence* const> seqs) {
  if (seqs.empty()) return;
  // Auto (0): up to 4, leaving half the cores alone. On the shared 2-core VM a second thread
  // made a step's 64 masks no faster (docs/PERFORMANCE.md): a mask costs ~1.5 us, so waking a
  // busy core costs as much as it saves; a GPU host has idle cores while the device computes.
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int threads = options_.mask_threads > 0 ? options_.mask_threads : std::min(4, cores / 2);
  if (threads <= 1 || seqs.size() < EngineOptions::kMinMaskPoolSeqs) {
    for (Sequence* s : seqs) fill_mask(*s);
    return;
  }
  // Created on first use, so an engine that never sees a constraint starts no threads. Sized
  // once (the tasks of a smaller batch leave some workers idle); its workers sleep at once
  // between steps rather than spin, so they never take a core from a CPU forward pass.
  if (!mask_pool_) mask_pool_ = std::make_unique<CpuThreadPool>(threads, 0);
  // Each task writes one sequence's mask from its own matcher: nothing else is shared, so the
  // masks are the same whichever thread fills them.
  mask_pool_->run(static_cast<int>(seqs.size()),
                  [&](int task, int) { fill_mask(*seqs[static_cast<size_t>(task)]); });
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
      if (e_.tiers_ && !s.import_tier_tried && hit.size() < max_hit &&
          e_.begin_tier_load(s, max_hit)) {
        // This worker's tiers first; finish_tier_load() then starts the import of the rest.
        s.import_tier_tried = true;
        st.kind = Started::Kind::kFetch;
      } else {
        const ImportStart started = e_.begin_import(s);
        if (started == ImportStart::kNoBlocks) st.kind = Started::Kind::kBlocked;
        if (started == ImportStart::kStarted) st.kind = Started::Kind::kFetch;
      }
    } else if (e_.tiers_ && !s.wants_prompt_lp() && hit.size() < max_hit &&
               e_.begin_tier_load(s, max_hit)) {
      st.kind = Started::Kind::kFetch;  // loading from the host or disk tier
    }
    st.n_computed = s.n_computed;
    st.n_blocks = static_cast<int>(s.blocks.size());
    return st;
  }

 private:
  Engine& e_;
  std::vector<Sequence*>& seqs_;
};

void Engine::order_queue(double now_ms) {
  // With a TTFT target: earliest deadline first, with the starvation bound of ttft_queue_key
  // (scheduler.h); otherwise arrival order. Under the priority policy, by class first
  // (queue_before). Keys change only as time passes (a sequence that can no longer make it moves
  // back) or as sequences come back (preemption, failed imports, released prompt groups), so the
  // queue is sorted only when it is out of order.
  const SchedulingPolicy policy = options_.scheduling_policy;
  const bool ttft = options_.target_ttft_ms > 0;
  const StepCoefficients& cost = step_model_.coefficients();
  bool sorted = true;
  const Sequence* prev = nullptr;
  for (auto& s : waiting_) {
    if (ttft) {
      const double prefill_ms =
          cost.base_ms + cost.chunk_ms(0, static_cast<int>(s->tokens.size()), false);
      s->queue_key = ttft_queue_key(now_ms - s->arrival_ms, prefill_ms, options_.target_ttft_ms,
                                    s->n_generated > 0);
    } else {
      s->queue_key = s->arrival_ms;
    }
    sorted =
        sorted && (prev == nullptr || !queue_before(policy, s->req.params.priority, s->queue_key,
                                                    prev->req.params.priority, prev->queue_key));
    prev = s.get();
  }
  if (sorted) return;
  std::stable_sort(waiting_.begin(), waiting_.end(), [policy](const auto& a, const auto& b) {
    return queue_before(policy, a->req.params.priority, a->queue_key, b->req.params.priority,
                        b->queue_key);
  });
}

double Engine::step_time_limit(double now_ms) const {
  const double itl = options_.target_itl_ms;
  const double ttft = options_.target_ttft_ms;
  if (!(ttft > 0)) return itl;
  const StepCoefficients& cost = step_model_.coefficients();
  // A request that has used half its TTFT target and can still make it, prefilling or queued.
  auto at_risk = [&](const Sequence& s) {
    if (s.n_generated > 0) return false;
    const double waited = now_ms - s.arrival_ms;
    const int left = static_cast<int>(s.tokens.size()) - s.n_computed;
    return waited >= 0.5 * ttft &&
           waited + cost.base_ms + cost.chunk_ms(s.n_computed, left, false) <= ttft;
  };
  bool urgent = false;
  for (const auto& s : running_) urgent = urgent || at_risk(*s);
  // The queue's head is enough: in deadline order the requests at risk come first.
  const size_t n_head = std::min(waiting_.size(), static_cast<size_t>(options_.max_num_seqs));
  for (size_t k = 0; k < n_head && !urgent; ++k) urgent = at_risk(*waiting_[k]);
  if (!urgent) return itl;
  // Each decoding sequence: the longest step after which its mean inter-token latency since its
  // first token is still within the target.
  double banked = std::numeric_limits<double>::infinity();
  for (const auto& s : running_) {
    if (s->n_generated == 0 || s->n_computed + 1 != static_cast<int>(s->tokens.size())) continue;
    banked = std::min(banked, itl * s->n_generated - (now_ms - s->first_token_ms));
  }
  if (!std::isfinite(banked)) return itl;
  return std::clamp(banked, itl, EngineOptions::kMaxItlBoost * itl);
}

std::vector<Engine::Planned> Engine::schedule() {
  const double now_ms = backend_->clock_ms();
  const bool priority = options_.scheduling_policy == SchedulingPolicy::kPriority;
  if ((options_.target_ttft_ms > 0 || priority) && waiting_.size() > 1) order_queue(now_ms);
  // Only as many waiting sequences as there are free slots can start.
  const int slots = options_.max_num_seqs - static_cast<int>(running_.size() + fetching_.size());
  const size_t n_heads = std::min(waiting_.size(), static_cast<size_t>(std::max(0, slots)));
  std::vector<Sequence*> seqs;
  std::vector<SchedSeq> states;
  seqs.reserve(running_.size() + n_heads);
  states.reserve(running_.size() + n_heads);
  for (const auto& s : running_) {
    seqs.push_back(s.get());
    states.push_back({static_cast<int>(s->tokens.size()), s->n_computed,
                      static_cast<int>(s->blocks.size()), s->req.params.priority, s->arrival_ms});
  }
  for (size_t k = 0; k < n_heads; ++k) {
    seqs.push_back(waiting_[k].get());
    states.push_back({static_cast<int>(waiting_[k]->tokens.size()), 0,
                      static_cast<int>(waiting_[k]->blocks.size()),
                      waiting_[k]->req.params.priority, waiting_[k]->arrival_ms});
  }
  ScheduleInput in;
  in.running = std::span<const SchedSeq>(states).first(running_.size());
  in.waiting = std::span<const SchedSeq>(states).subspan(running_.size());
  in.n_fetching = static_cast<int>(fetching_.size());
  in.token_budget = options_.max_num_batched_tokens;
  in.max_num_seqs = options_.max_num_seqs;
  in.block_size = block_size_;
  in.policy = options_.scheduling_policy;
  if (options_.target_itl_ms > 0) {
    in.cost = &step_model_.coefficients();
    in.time_limit_ms = step_time_limit(now_ms);
    if (in.time_limit_ms > options_.target_itl_ms) stats_.boosted_steps++;
    in.min_prefill_ms = options_.min_prefill_share * options_.target_itl_ms;
  }
  SchedulerView view(*this, seqs);
  const SchedulePlan plan = engine::schedule(in, view);

  // Preempted: in the plan's order, each to the queue's front (under fcfs newest first, so the
  // oldest of them ends up first; under priority the next step's order_queue sorts them in).
  std::vector<Sequence*> preempted_leaders;
  for (size_t i : plan.preempted) {
    if (running_[i]->group_leader) preempted_leaders.push_back(running_[i].get());
    waiting_.push_front(std::move(running_[i]));
    stats_.preemptions++;
  }
  if (!plan.preempted.empty()) std::erase(running_, nullptr);
  // Started: the queue's first started + fetching sequences, in order.
  const size_t n_started = plan.started.size() + plan.fetching.size();
  size_t next_fetching = 0;
  for (size_t k = 0; k < n_started; ++k) {
    std::unique_ptr<Sequence> s = std::move(waiting_.front());
    waiting_.pop_front();
    stats_.prefix_cache_queried_tokens += s->tokens.size();
    stats_.prefix_cache_hit_tokens += static_cast<uint64_t>(s->n_hit);
    if (s->cached_tokens < 0) {
      s->cached_tokens = std::min(s->n_hit, s->n_prompt);
      stats_.queue_admissions++;
      stats_.queue_wait_seconds += (now_ms - s->arrival_ms) / 1000.0;
    }
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
  // A preempted leader recomputes later; its members should not wait that long (they queue
  // behind it and compute the prompt themselves).
  for (Sequence* leader : preempted_leaders) release_group(*leader);
  return out;
}

Status Engine::forward(const std::vector<Planned>& plan, std::span<const SeqChunk> chunks,
                       std::vector<SampledToken>& sampled) {
  sampled.clear();
  if (std::any_of(chunks.begin(), chunks.end(), [](const SeqChunk& c) { return c.all_logits; }))
    return forward_all_logits(plan, chunks, sampled);
  // A backend that samples every row itself: no logits at all.
  if (backend_->samples_all_rows()) {
    std::vector<Sequence*> masked;
    for (size_t i = 0; i < plan.size(); ++i)
      if (chunks[i].want_logits && plan[i].seq->masked()) masked.push_back(plan[i].seq);
    fill_masks(masked);
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
      if (s.masked()) r.allowed = s.mask;
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
  // The device rows' masks: all of them are filled, on the mask pool, at the backend's first
  // fill_mask call (once it queued the forward pass); each call then copies its row's.
  std::vector<Sequence*> device_masked;
  bool device_masks_filled = false;
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
      r.logit_bias = s.req.params.logit_bias;
      if (s.masked() && !r.on_host) {
        // Called by the backend once the forward pass is queued: overlaps the device's work.
        Sequence* seq = plan[i].seq;
        device_masked.push_back(seq);
        r.fill_mask = [this, seq, &device_masked, &device_masks_filled](uint32_t* words) {
          if (!device_masks_filled) {
            fill_masks(device_masked);
            device_masks_filled = true;
          }
          std::copy(seq->mask.begin(), seq->mask.end(), words);
        };
      }
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
  // The host rows' masks, filled together on the mask pool before they are sampled one by one.
  std::vector<Sequence*> host_masked;
  size_t row = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    if (!chunks[i].want_logits) continue;
    if ((rows.empty() || rows[row].on_host) && plan[i].seq->masked())
      host_masked.push_back(plan[i].seq);
    ++row;
  }
  fill_masks(host_masked);
  size_t host_row = 0;
  row = 0;
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
      if (s.masked()) {
        sampled.push_back(s.sampler->sample(row_logits, s.mask));
      } else {
        sampled.push_back(s.sampler->sample(row_logits));
      }
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
  if (tiers_) offload_blocks();  // before this step overwrites the evicted blocks
  if (plan.empty()) {
    if (running_.empty() && !waiting_.empty() && fetching_.empty() && transfers_.empty()) {
      // Cannot happen while max_context_ fits the pool (an idle pool holds any one request);
      // refuse the request rather than spin.
      std::unique_ptr<Sequence> s = std::move(waiting_.front());
      waiting_.pop_front();
      spdlog::error("engine: request {} does not fit the KV cache", s->req.id);
      if (s->group_leader) release_group(*s);
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
  const StepShape shape = step_shape(chunks);
  const double predicted_ms = step_model_.predict_ms(shape);
  std::vector<SampledToken> sampled;
  const Status st = forward(plan, chunks, sampled);
  const double step_end_ms = backend_->clock_ms();
  stats_.steps++;
  std::vector<Sequence*> done;
  if (!st.is_ok()) {
    spdlog::error("engine step failed: {}", st.to_string());
    for (const Planned& p : plan) {
      if (p.seq->group_leader) release_group(*p.seq);
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
      // The prompt's full blocks are in the prefix cache now: its group may start on them.
      if (s.group_leader && s.n_computed >= s.n_prompt) release_group(s);
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
      // Not for prefill-only requests: their max_tokens of 1 is not the request's.
      if (s.matcher && options_.grammar_compiler && !s.req.disagg.prefill_only) {
        const int64_t budget =
            std::min<int64_t>(s.req.params.max_tokens - s.n_generated,
                              max_context_ - static_cast<int64_t>(s.tokens.size()));
        steer_to_finish(*s.matcher, s.req.params, budget, options_.eos_token_ids,
                        options_.grammar_compiler->vocab(), n_vocab_, s.byte_tokens, tok);
      }
      const int32_t id = tok.token;
      s.tokens.push_back(id);
      if (s.n_generated++ == 0) s.first_token_ms = step_end_ms;
      stats_.generated_tokens++;

      FinishReason reason = FinishReason::kNone;
      Status error = Status::ok();
      bool constraint_done = false;
      const auto& eos = options_.eos_token_ids;
      const auto& stops = s.req.params.stop_token_ids;
      if ((!s.req.params.ignore_eos && std::find(eos.begin(), eos.end(), id) != eos.end()) ||
          std::find(stops.begin(), stops.end(), id) != stops.end()) {
        reason = FinishReason::kStop;
      } else if (s.matcher && !s.matcher->accept_token(id)) {
        // The sampler drew from the mask, so this is a bug (backend or matcher), not the client's.
        spdlog::error("engine: request {}: token {} is outside its constraint's mask", s.req.id,
                      id);
        reason = FinishReason::kError;
        error = internal_error("a sampled token broke the request's output constraint");
      } else if (s.matcher && s.matcher->is_terminated() && !s.req.disagg.prefill_only) {
        // The constraint is complete: nothing but EOS may follow, so stop without sampling it.
        // The token goes out with kNone and an empty kStop follows: a kStop output's last token
        // is the stop token (it adds no text), and this one is part of the output.
        constraint_done = true;
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
      if (error.is_ok()) out.tokens.push_back(std::move(tok));
      out.finish = reason;
      out.error = std::move(error);
      out.prompt_tokens = s.n_prompt;
      out.completion_tokens = s.n_generated;
      out.cached_tokens = std::max(0, s.cached_tokens);
      if (reason != FinishReason::kNone || constraint_done) done.push_back(&s);
      outbox_.emplace_back(&s, std::move(out));
      if (constraint_done) finish(s, FinishReason::kStop);
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
  stats_.prefill_tokens += static_cast<uint64_t>(shape.prefill_tokens);
  stats_.last_step_prefill_tokens = static_cast<int>(shape.prefill_tokens);
  stats_.last_step_predicted_seconds = predicted_ms / 1000.0;
  if (st.is_ok() && stats_.last_step_seconds > 0) {
    const double measured_ms = stats_.last_step_seconds * 1000.0;
    stats_.step_model_samples++;
    stats_.step_model_relative_error += std::fabs(predicted_ms - measured_ms) / measured_ms;
    step_model_.observe(shape, measured_ms);
  }
  // Write-through: the blocks this step completed go to the tiers now rather than after the next
  // schedule() (an engine that goes idle would keep them back until its next request).
  if (tiers_ && tiers_->options().offload_all_completed) offload_blocks();
  return true;
}

}  // namespace turbine::engine
