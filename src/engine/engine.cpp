// Engine: life cycle, the engine thread's loop, stats and output delivery. Scheduling and the
// step are in engine_step.cpp, disaggregated serving (transfers, imports) in engine_import.cpp.
#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include <spdlog/spdlog.h>

#include "engine/engine_sequence.h"

namespace turbine::engine {

namespace {

// The request field a constraint error names when the engine (not the frontend) finds it.
std::string request_constraint_field(const structured::ConstraintSpec& spec) {
  return std::string("constraint.") + structured::constraint_kind_name(spec.kind);
}

}  // namespace

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
  if (!(target_itl_ms >= 0) || !std::isfinite(target_itl_ms))
    return invalid_argument("target_itl_ms must be >= 0 (0: off)", "target_itl_ms");
  if (!(target_ttft_ms >= 0) || !std::isfinite(target_ttft_ms))
    return invalid_argument("target_ttft_ms must be >= 0 (0: off)", "target_ttft_ms");
  if (!(min_prefill_share > 0 && min_prefill_share <= 1))
    return invalid_argument("min_prefill_share must be in (0, 1]", "min_prefill_share");
  if (mask_threads < 0 || mask_threads > 256)
    return invalid_argument("mask_threads must be in [0, 256] (0: auto)", "mask_threads");
  if (compile_threads < 0 || compile_threads > 64)
    return invalid_argument("compile_threads must be in [0, 64] (0: on the caller's thread)",
                            "compile_threads");
  if (!step_model.valid())
    return invalid_argument("step_model: forgetting in (0, 1], prior weight > 0, outlier ratio > 1",
                            "step_model");
  return Status::ok();
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
      mailbox_(std::make_shared<Mailbox>()),
      step_model_([&] {
        StepModelOptions m = options_.step_model;
        m.prior = backend_->step_time_prior();
        return m;
      }()) {
  mailbox_->engine = this;
  if (options_.kv_tiers) {
    // A simulated layout moves no bytes: its tiers hold placeholders of any size.
    if (kv_layout_.exportable() &&
        (kv_layout_.simulated() ||
         kv_layout_.bytes_per_block == options_.kv_tiers->block_bytes())) {
      tiers_ = options_.kv_tiers;
      pool_.set_record_evictions(true);
      pool_.set_record_stores(tiers_->options().offload_all_completed);
      tiers_->set_notify([mb = mailbox_] {
        std::lock_guard lock(mb->mu);
        if (mb->engine == nullptr) return;
        {
          std::lock_guard inbox(mb->engine->mu_);
          mb->engine->tier_ready_ = true;
        }
        mb->engine->cv_.notify_one();
      });
    } else {
      // The CLI sizes the tiers from this backend's layout, so this is a wiring bug.
      spdlog::error("engine: KV tiers disabled: block of {} bytes, the backend's is {} ({})",
                    options_.kv_tiers->block_bytes(), kv_layout_.bytes_per_block,
                    kv_layout_.dtype.empty() ? "no KV export" : kv_layout_.dtype);
    }
  }
  stats_.kv_total_blocks = pool_.num_blocks();
  stats_.kv_block_size = block_size_;
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
  if (request.params.priority != 0 && options_.scheduling_policy != SchedulingPolicy::kPriority) {
    // vLLM's rule: a priority means nothing under first-come-first-served, so say so.
    return invalid_argument("priority " + std::to_string(request.params.priority) +
                                " needs the server to run with --scheduling-policy priority",
                            "priority");
  }
  if (!request.params.logit_bias.empty() && request.params.logit_bias.back().first >= n_vocab_) {
    return invalid_argument("logit_bias names token " +
                                std::to_string(request.params.logit_bias.back().first) +
                                ", outside the vocabulary [0, " + std::to_string(n_vocab_) + ")",
                            "logit_bias");
  }
  if (request.params.prompt_logprobs >= 0 && !backend_->supports_all_logits()) {
    return invalid_argument(
        "prompt logprobs are not supported on this backend (" + std::string(backend_->name()) + ")",
        "logprobs");
  }
  if (!request.on_output) return internal_error("engine request without an output callback");
  std::unique_ptr<structured::Matcher> matcher;
  const bool cold = request.params.constraint.active() && options_.grammar_compiler &&
                    (options_.compile_threads > 0 || options_.compile_executor) &&
                    !options_.grammar_compiler->ready(request.params.constraint);
  if (request.params.constraint.active() && !cold) {
    TURBINE_ASSIGN_OR_RETURN(matcher, make_matcher(request));
  }
  int waiting = 0;
  {
    std::lock_guard lock(stats_mu_);
    waiting = published_.waiting;
  }
  const double at_ms = backend_->clock_ms();
  {
    std::lock_guard lock(mu_);
    if (stopping_) return {StatusCode::kUnavailable, "the server is shutting down"};
    if (static_cast<int>(inbox_.size() + compiling_.size()) + waiting >= options_.max_waiting) {
      return {StatusCode::kResourceExhausted, "too many queued requests; retry later"};
    }
    if (cold) {
      compiling_[request.id] = 0;
    } else {
      inbox_.push_back({std::move(request), std::move(matcher), at_ms});
    }
  }
  if (cold) {
    compile_async(std::move(request), at_ms);
    return Status::ok();
  }
  cv_.notify_one();
  return Status::ok();
}

void Engine::compile_async(EngineRequest request, double at_ms) {
  // The job may outlive the engine (an injected executor): it reaches it through the mailbox,
  // which shutdown() cuts, and holds the compiler itself.
  auto job = [mb = mailbox_, compiler = options_.grammar_compiler, at_ms,
              req = std::make_shared<EngineRequest>(std::move(request))]() mutable {
    auto gone = [&] {
      EngineOutput out;
      out.finish = FinishReason::kCancelled;
      out.prompt_tokens = static_cast<int>(req->prompt.size());
      req->on_output(std::move(out));
    };
    {
      std::lock_guard lock(mb->mu);
      if (mb->engine == nullptr) return gone();
    }
    // Warms the compiler's cache (errors are cached too), outside every engine lock.
    (void)compiler->compile(req->params.constraint);
    std::lock_guard lock(mb->mu);  // shutdown() waits for compiled() to return
    if (mb->engine == nullptr) return gone();
    mb->engine->compiled(std::move(*req), at_ms);
  };
  if (options_.compile_executor) return options_.compile_executor(std::move(job));
  std::lock_guard lock(compile_pool_mu_);
  if (!compile_pool_) compile_pool_ = std::make_unique<JobPool>(options_.compile_threads);
  compile_pool_->post(std::move(job));
}

void Engine::compiled(EngineRequest request, double at_ms) {
  auto matcher = make_matcher(request);  // a cache hit now
  int cancelled = 0;
  {
    std::lock_guard lock(mu_);
    if (auto it = compiling_.find(request.id); it != compiling_.end()) {
      cancelled = it->second;
      compiling_.erase(it);
    }
    // After stopping_ the engine thread has taken its last inbox: end the request here.
    if (stopping_ && cancelled == 0) cancelled = 1;
    if (matcher.has_value() && cancelled == 0) {
      inbox_.push_back({std::move(request), std::move(matcher).value(), at_ms});
    }
  }
  if (matcher.has_value() && cancelled == 0) {
    cv_.notify_one();
    return;
  }
  EngineOutput out;
  out.prompt_tokens = static_cast<int>(request.prompt.size());
  if (!matcher.has_value()) {
    out.finish = FinishReason::kError;
    out.error = matcher.status();
  } else {
    out.finish = cancelled == 2 ? FinishReason::kStop : FinishReason::kCancelled;
  }
  request.on_output(std::move(out));
}

Result<std::unique_ptr<structured::Matcher>> Engine::make_matcher(const EngineRequest& request) {
  const SamplingParams& p = request.params;
  const std::string field = request_constraint_field(p.constraint);
  if (!options_.grammar_compiler) {
    return invalid_argument("structured outputs are not available on this engine", field);
  }
  if (options_.grammar_compiler->vocab().size() > n_vocab_) {
    return internal_error("the grammar compiler's vocabulary is larger than the model's logits");
  }
  auto compiled = options_.grammar_compiler->compile(p.constraint);
  if (!compiled.has_value()) {
    return Status(compiled.status().code(), compiled.status().message(), field);
  }
  if (Status st = structured::check_start_trigger(p.constraint.start, (*compiled)->vocab());
      !st.is_ok()) {
    return invalid_argument(st.message(), field);
  }
  auto matcher = std::make_unique<structured::Matcher>(std::move(*compiled), p.constraint.start);
  if (p.constraint_replay > static_cast<int>(request.prompt.size())) {
    return invalid_argument("constraint_replay is longer than the prompt", "constraint_replay");
  }
  // The tokens generated elsewhere under the constraint (migration, disaggregated prefill),
  // those before and including a start trigger too: they advance only the matcher's phase.
  const auto replay =
      std::span<const int32_t>(request.prompt).last(static_cast<size_t>(p.constraint_replay));
  if (Status st = matcher->accept_tokens(replay); !st.is_ok()) {
    return invalid_argument(
        "the tokens generated before this request moved do not match its constraint: " +
            st.message(),
        field);
  }
  return matcher;
}

void Engine::cancel(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    cancels_.insert(id);
    if (auto it = compiling_.find(id); it != compiling_.end() && it->second == 0) it->second = 1;
  }
  cv_.notify_one();
}

void Engine::stop(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    cancels_.insert(id);
    stops_.insert(id);
    if (auto it = compiling_.find(id); it != compiling_.end() && it->second == 0) it->second = 2;
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
  backend_->interrupt();  // a step that waits (simulated time) ends now
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(mailbox_->mu);
    mailbox_->engine = nullptr;
  }
  // Compile jobs still queued or running end their requests (kCancelled) without the engine.
  std::unique_ptr<JobPool> compiles;
  {
    std::lock_guard lock(compile_pool_mu_);
    compiles = std::move(compile_pool_);
  }
  compiles.reset();
}

EngineStats Engine::stats() const {
  EngineStats s;
  {
    std::lock_guard lock(stats_mu_);
    s = published_;
  }
  if (options_.kv_transfer) {
    std::vector<KvTransportStats> t = options_.kv_transfer->transport_stats();
    t.insert(t.end(), s.kv_transports.begin(), s.kv_transports.end());
    s.kv_transports = std::move(t);
  }
  add_tier_stats(s);
  return s;
}

void Engine::publish_stats() {
  stats_.running = static_cast<int>(running_.size());
  stats_.waiting = static_cast<int>(waiting_.size() + fetching_.size() + held_.size());
  stats_.kv_used_blocks = pool_.num_blocks() - pool_.num_free();
  stats_.kv_transfers_pinned = transfers_.size();
  stats_.kv_transfer_pinned_blocks = transfers_.pinned_blocks();
  stats_.kv_transports.clear();
  if (stats_.kv_device_imports + device_import_failures_ > 0) {
    stats_.kv_transports.push_back({"cuda_ipc", stats_.kv_device_imports + device_import_failures_,
                                    device_import_failures_, stats_.kv_import_device_bytes,
                                    stats_.kv_import_device_seconds});
  }
  std::lock_guard lock(stats_mu_);
  published_ = stats_;
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
  if (reason == FinishReason::kCancelled) stats_.cancelled++;
  outbox_.emplace_back(&seq, std::move(out));
}

void Engine::flush() {
  publish_stats();
  for (auto& [seq, out] : outbox_) seq->req.on_output(std::move(out));
  outbox_.clear();
  retired_.clear();
}

void Engine::admit(std::unique_ptr<Sequence> seq) {
  const uint64_t group = seq->req.params.prompt_group;
  // Sharing needs a cached prompt block to share: a prompt longer than one block (its last token
  // is always computed) and a prefix cache.
  const bool shareable = group != 0 && options_.enable_prefix_caching && !seq->req.disagg.import &&
                         seq->n_prompt > block_size_;
  if (shareable) {
    if (group_leaders_.count(group) != 0) {
      held_.push_back(std::move(seq));
      return;
    }
    seq->group_leader = true;
    group_leaders_[group] = seq.get();
  }
  waiting_.push_back(std::move(seq));
}

void Engine::release_group(Sequence& leader) {
  leader.group_leader = false;
  const uint64_t group = leader.req.params.prompt_group;
  group_leaders_.erase(group);
  // The members go to the queue's front, in arrival order: they came with their leader, before
  // anything queued since.
  std::vector<std::unique_ptr<Sequence>> members;
  for (auto it = held_.begin(); it != held_.end();) {
    if ((*it)->req.params.prompt_group == group) {
      members.push_back(std::move(*it));
      it = held_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = members.rbegin(); it != members.rend(); ++it) waiting_.push_front(std::move(*it));
}

void Engine::loop() {
  for (;;) {
    std::deque<Inbound> incoming;
    std::unordered_set<uint64_t> cancels;
    std::unordered_set<uint64_t> stops;  // of the cancels, those ended by the caller's stop()
    std::deque<Fetched> fetched;
    std::deque<SourceOp> ops;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      auto ready = [&] {
        return stopping_ || tier_ready_ || !inbox_.empty() || !cancels_.empty() ||
               !fetched_.empty() || !source_ops_.empty() || !running_.empty() ||
               (!waiting_.empty() && !idle_);
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
      tier_ready_ = false;
    }
    for (auto& op : ops) run_source_op(op);
    for (auto& f : fetched) complete_fetch(std::move(f));
    if (tiers_) {
      poll_offloads(stopping);
      for (auto& l : tiers_->take_loads()) complete_tier_load(std::move(l));
      publish_tier_events();
    }
    expire(Clock::now());
    const bool host_sampling = !backend_->samples_all_rows();
    for (auto& in : incoming) {
      stats_.prompt_tokens += in.req.prompt.size();
      auto seq = std::make_unique<Sequence>(std::move(in.req), n_vocab_, options_.eos_token_ids,
                                            seed_rng_(), host_sampling);
      seq->matcher = std::move(in.matcher);
      seq->arrival_ms = in.at_ms;
      admit(std::move(seq));
    }
    if (stopping) {
      for (auto& s : running_) cancels.insert(s->req.id);
      for (auto& s : waiting_) cancels.insert(s->req.id);
      for (auto& s : fetching_) cancels.insert(s->req.id);
      for (auto& s : held_) cancels.insert(s->req.id);
    }
    if (!cancels.empty()) {
      std::vector<Sequence*> leaders;  // dropped group leaders: their members queue afterwards
      auto drop = [&](auto& seqs) {
        for (auto it = seqs.begin(); it != seqs.end();) {
          if (cancels.count((*it)->req.id) != 0) {
            if ((*it)->fetch_gen != 0 && options_.kv_transfer)
              options_.kv_transfer->release(*(*it)->req.disagg.import);
            (*it)->fetch_gen = 0;
            if ((*it)->group_leader) leaders.push_back(it->get());
            free_blocks(**it);
            finish(**it, stops.count((*it)->req.id) != 0 ? FinishReason::kStop
                                                         : FinishReason::kCancelled);
            retired_.push_back(std::move(*it));
            it = seqs.erase(it);
          } else {
            ++it;
          }
        }
      };
      drop(held_);
      drop(waiting_);
      drop(running_);
      drop(fetching_);
      for (Sequence* leader : leaders) release_group(*leader);  // still alive in retired_
    }
    if (stopping) {
      transfers_.clear();
      flush();
      return;
    }
    flush();  // cancellations are answered before the step
    idle_ = !step();
    flush();
  }
}

}  // namespace turbine::engine
