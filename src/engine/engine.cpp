// Engine: life cycle, the engine thread's loop, stats and output delivery. Scheduling and the
// step are in engine_step.cpp, disaggregated serving (transfers, imports) in engine_import.cpp.
#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <random>

#include <spdlog/spdlog.h>

#include "engine/engine_sequence.h"

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
  if (request.params.prompt_logprobs >= 0 && !backend_->supports_all_logits()) {
    return invalid_argument(
        "prompt logprobs are not supported on this backend (" + std::string(backend_->name()) + ")",
        "logprobs");
  }
  if (!request.on_output) return internal_error("engine request without an output callback");
  int waiting = 0;
  {
    std::lock_guard lock(stats_mu_);
    waiting = published_.waiting;
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_) return {StatusCode::kUnavailable, "the server is shutting down"};
    if (static_cast<int>(inbox_.size()) + waiting >= options_.max_waiting) {
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
  backend_->interrupt();  // a step that waits (simulated time) ends now
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mailbox_->mu);
  mailbox_->engine = nullptr;
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
  return s;
}

void Engine::publish_stats() {
  stats_.running = static_cast<int>(running_.size());
  stats_.waiting = static_cast<int>(waiting_.size() + fetching_.size());
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
    const bool host_sampling = !backend_->samples_all_rows();
    for (auto& r : incoming) {
      stats_.prompt_tokens += r.prompt.size();
      waiting_.push_back(std::make_unique<Sequence>(std::move(r), n_vocab_, options_.eos_token_ids,
                                                    seed_rng_(), host_sampling));
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
            retired_.push_back(std::move(*it));
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
      flush();
      return;
    }
    flush();  // cancellations are answered before the step
    idle_ = !step();
    flush();
  }
}

}  // namespace turbine::engine
