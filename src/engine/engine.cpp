#include "engine/engine.h"

#include <algorithm>

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
  return Status::ok();
}

struct Engine::Sequence {
  EngineRequest req;
  std::vector<int32_t> tokens;  // prompt followed by generated tokens
  int n_prompt = 0;
  int n_computed = 0;  // positions already in the slot's KV cache
  int n_generated = 0;
  int slot = -1;
  Sampler sampler;

  Sequence(EngineRequest&& r, int32_t n_vocab)
      : req(std::move(r)),
        tokens(req.prompt),
        n_prompt(static_cast<int>(req.prompt.size())),
        sampler(req.params, req.prompt, n_vocab) {}
};

Engine::Engine(std::unique_ptr<Backend> backend, int32_t n_vocab, EngineOptions options)
    : backend_(std::move(backend)),
      n_vocab_(n_vocab),
      options_(std::move(options)),
      max_context_(backend_->max_context()),
      n_slots_(backend_->num_slots()) {
  for (int s = n_slots_ - 1; s >= 0; --s) free_slots_.push_back(s);
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

void Engine::shutdown() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

EngineStats Engine::stats() const {
  EngineStats s;
  s.running = n_running_.load();
  s.waiting = n_waiting_.load();
  s.steps = n_steps_.load();
  s.cancelled = n_cancelled_.load();
  s.prompt_tokens = n_prompt_tokens_.load();
  s.generated_tokens = n_generated_tokens_.load();
  return s;
}

void Engine::finish(Sequence& seq, FinishReason reason, Status error) {
  EngineOutput out;
  out.finish = reason;
  out.error = std::move(error);
  out.prompt_tokens = seq.n_prompt;
  out.completion_tokens = seq.n_generated;
  if (reason == FinishReason::kCancelled) n_cancelled_++;
  seq.req.on_output(std::move(out));
}

void Engine::loop() {
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
      waiting_.push_back(std::make_unique<Sequence>(std::move(r), n_vocab_));
    }
    if (stopping) {
      for (auto& s : running_) cancels.insert(s->req.id);
      for (auto& s : waiting_) cancels.insert(s->req.id);
    }
    if (!cancels.empty()) {
      auto drop = [&](auto& seqs) {
        for (auto it = seqs.begin(); it != seqs.end();) {
          if (cancels.count((*it)->req.id) != 0) {
            if ((*it)->slot >= 0) {
              backend_->release_slot((*it)->slot);
              free_slots_.push_back((*it)->slot);
            }
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
      n_running_ = 0;
      n_waiting_ = 0;
      return;
    }
    admit();
    n_running_ = static_cast<int>(running_.size());
    n_waiting_ = static_cast<int>(waiting_.size());
    if (!running_.empty()) step();
  }
}

void Engine::admit() {
  while (!waiting_.empty() && !free_slots_.empty()) {
    auto seq = std::move(waiting_.front());
    waiting_.pop_front();
    seq->slot = free_slots_.back();
    free_slots_.pop_back();
    running_.push_back(std::move(seq));
  }
}

bool Engine::step() {
  // Decode tokens first (one per running sequence past its prompt), then prompt chunks in
  // arrival order with what is left of the token budget.
  std::vector<SeqChunk> chunks;
  std::vector<Sequence*> owners;
  int budget = options_.max_num_batched_tokens;
  for (auto& s : running_) {
    if (s->n_computed >= s->n_prompt && budget > 0) {
      chunks.push_back(
          {s->slot, s->n_computed, std::span<const int32_t>(&s->tokens.back(), 1), true});
      owners.push_back(s.get());
      --budget;
    }
  }
  for (auto& s : running_) {
    if (s->n_computed < s->n_prompt && budget > 0) {
      const int n = std::min(budget, s->n_prompt - s->n_computed);
      chunks.push_back(
          {s->slot, s->n_computed,
           std::span<const int32_t>(s->tokens.data() + s->n_computed, static_cast<size_t>(n)),
           s->n_computed + n == s->n_prompt});
      owners.push_back(s.get());
      budget -= n;
    }
  }
  if (chunks.empty()) return false;

  std::vector<float> logits;
  Status st = backend_->forward(chunks, logits);
  n_steps_++;
  std::vector<Sequence*> done;
  std::vector<FinishReason> reasons;
  if (!st.is_ok()) {
    spdlog::error("engine step failed: {}", st.to_string());
    for (Sequence* s : owners) {
      done.push_back(s);
      reasons.push_back(FinishReason::kError);
    }
  } else {
    size_t row = 0;
    for (size_t i = 0; i < chunks.size(); ++i) {
      Sequence& s = *owners[i];
      s.n_computed += static_cast<int>(chunks[i].tokens.size());
      if (!chunks[i].want_logits) continue;
      std::span<float> row_logits(logits.data() + row * static_cast<size_t>(n_vocab_),
                                  static_cast<size_t>(n_vocab_));
      ++row;
      SampledToken tok = s.sampler.sample(row_logits);
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
    backend_->release_slot(s->slot);
    free_slots_.push_back(s->slot);
    auto it =
        std::find_if(running_.begin(), running_.end(), [&](const auto& p) { return p.get() == s; });
    running_.erase(it);
  }
  return true;
}

}  // namespace turbine::engine
