// SimulatedBackend: an engine::Backend that computes nothing. Each step sleeps the time a timing
// model gives for it (divided by `speedup`) and yields deterministic pseudo-random tokens, so
// engine::Engine over it simulates a GPU worker in time: the idea of NVIDIA Dynamo's mocker
// (facts only), with the real engine's scheduler, KV bookkeeping and disaggregation.
//
// Timing model (one step; defaults roughly a Llama-3-8B in BF16 on one H100):
//   step_ms = base_ms                                   (weights streamed once per step)
//           + per_seq_ms          * sequences in the step
//           + per_kv_token_ms     * KV positions read by the step (context of every sequence)
//           + per_prefill_token_ms * new prompt tokens in the step
//           + attention_ms        * sum over prefill chunks of (chunk tokens * context length)
// base 5 ms = 16 GB of weights at ~3.3 TB/s; per_kv_token 4e-5 ms = 128 KiB of KV per token
// (32 layers x 8 KV heads x 128 x 2 x BF16) at ~3.3 TB/s; per_prefill_token 0.03 ms = 16 GFLOP
// per token at ~550 TFLOP/s; attention 1.3e-6 ms = 4 x 32 layers x 4096 FLOP per token pair.
// So a lone decode step at 4k context takes ~5.2 ms, a 4k-token prefill ~150 ms. A chunk of one
// position that wants logits counts as a decode, any other chunk as prefill. Steps follow each
// other back to back in simulated time; an idle backend starts its next step from now.
//
// Tokens (Backend::forward_sample_all, no logits): a pseudo-random id in [0, n_vocab) from (the
// prompt's hash, the token's index), skipping the ids the engine suppresses before min_tokens;
// logprobs are placeholders (0 for the sampled token, -20 for the others asked for).
//
// KV: a layout of dtype "sim" (engine::kSimulatedKvDtype) whose blocks are block_size x
// kv_bytes_per_token bytes for transfer times but hold none: exports are empty, imports carry
// nothing (the time they would take is SimulatedKvLink's).
//
// Threads: the engine thread calls everything but interrupt() and clock_ms() (any thread) and the
// simulated clock's reads (any thread).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "engine/backend.h"

namespace turbine::mock {

struct MockTiming {
  double base_ms = 5.0;
  double per_seq_ms = 0.02;
  double per_kv_token_ms = 4.0e-5;
  double per_prefill_token_ms = 0.03;
  double attention_ms = 1.3e-6;

  // `prefill_context_product`: sum over prefill chunks of chunk tokens x (context + chunk / 2).
  double step_ms(int n_seqs, int64_t kv_tokens, int64_t prefill_tokens,
                 double prefill_context_product) const {
    return base_ms + per_seq_ms * n_seqs + per_kv_token_ms * static_cast<double>(kv_tokens) +
           per_prefill_token_ms * static_cast<double>(prefill_tokens) +
           attention_ms * prefill_context_product;
  }
};

struct SimulatedBackendOptions {
  int32_t n_vocab = 32000;
  int num_blocks = 16384;
  int block_size = 16;
  int max_context = 131072;
  double speedup = 1.0;  // simulated seconds per wall-clock second
  MockTiming timing;
  int64_t kv_bytes_per_token = int64_t{128} << 10;
};

// Simulated milliseconds of all steps so far (independent of speedup): the backend adds to it on
// the engine thread; anyone holding it reads it.
using SimulatedClock = std::atomic<double>;

class SimulatedBackend final : public engine::Backend {
 public:
  SimulatedBackend(SimulatedBackendOptions options, std::shared_ptr<SimulatedClock> clock);

  std::string_view name() const override { return "simulated"; }
  int max_context() const override { return options_.max_context; }
  int num_blocks() const override { return options_.num_blocks; }
  int block_size() const override { return options_.block_size; }
  // No logits exist: only forward_sample_all runs a step.
  Status forward(std::span<const engine::SeqChunk> chunks, std::vector<float>& logits) override;
  bool samples_all_rows() const override { return true; }
  Status forward_sample_all(std::span<const engine::SeqChunk> chunks,
                            std::span<const engine::SampleRow> rows,
                            std::vector<engine::SampledToken>& tokens) override;
  double last_step_seconds() const override { return last_step_seconds_; }
  // The timing model itself: the engine's step-time model starts exact here.
  engine::StepCoefficients step_time_prior() const override;
  double clock_ms() const override { return clock_->load(); }
  void interrupt() override;

  engine::KvLayout kv_layout() const override;
  Status read_kv_blocks(std::span<const int32_t> blocks, std::string& out) override;
  Status write_kv_blocks(std::span<const int32_t> blocks, std::string_view bytes,
                         int n_positions) override;

  // The modelled time of a step over these chunks, in milliseconds.
  double step_ms(std::span<const engine::SeqChunk> chunks) const;

 private:
  using Clock = std::chrono::steady_clock;
  engine::SampledToken next_token(const engine::SampleRow& row) const;

  const SimulatedBackendOptions options_;
  const std::shared_ptr<SimulatedClock> clock_;
  double last_step_seconds_ = -1.0;
  Clock::time_point next_step_at_{};

  std::mutex mu_;  // guards interrupted_, for the step's wait
  std::condition_variable cv_;
  bool interrupted_ = false;
};

}  // namespace turbine::mock
