// The step-time model: how long one Backend::forward takes as a function of the step's shape,
// learned online from the engine's own measured steps (issue 29). The scheduler uses it to fit a
// step's prefill work into a latency target (engine/scheduler.h).
//
//   step_ms = base_ms                                      (weights read once per step)
//           + per_seq_ms            * chunks in the step   (per-sequence work: sampling, tables)
//           + per_kv_token_ms       * KV positions read    (every chunk's context after the step)
//           + per_prefill_token_ms  * prefill tokens       (chunks other than single-token decodes)
//           + attention_ms          * sum over prefill chunks of n * (pos + n / 2)
//
// The same features as the simulated backend's timing (mock/simulated_backend.h), so the model is
// exact there. On a GPU the true curve is not linear (GEMMs turn from memory- to compute-bound as
// rows grow); exponential forgetting keeps the fit local to the batch sizes the engine is running.
//
// Fit: ridge-regularised least squares with exponential forgetting. The sums X'WX and X'Wy decay
// by `forgetting` per observation; the prior (the backend's own guess, Backend::step_time_prior)
// enters as `prior_weight` pseudo-observations that never decay, so directions the recent steps do
// not excite (e.g. prefill during a decode-only phase) fall back to the prior instead of drifting.
// Coefficients are kept >= 0 (an active set: negative ones are fixed at 0 and the rest re-solved),
// so predicted time never falls as work is added. A measurement more than `outlier_ratio` times
// off the prediction (a CUDA graph capture, a page fault storm) is clipped to that ratio.
//
// Not thread-safe: the engine thread owns its model; readers get copies of the coefficients.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace turbine::engine {

struct SeqChunk;

// What a step computes, in the model's features.
struct StepShape {
  int n_seqs = 0;                  // chunks (sequences) in the step
  int64_t kv_tokens = 0;           // sum over chunks of pos + tokens (KV positions read)
  int64_t prefill_tokens = 0;      // tokens of chunks that are not single-token decodes
  double prefill_attention = 0.0;  // sum over those chunks of n * (pos + n / 2)

  void add_chunk(int pos, int n_tokens, bool decode);
};

// A decode is a chunk of one position that wants logits; anything else is prefill.
StepShape step_shape(std::span<const SeqChunk> chunks);

struct StepCoefficients {
  double base_ms = 0.0;
  double per_seq_ms = 0.0;
  double per_kv_token_ms = 0.0;
  double per_prefill_token_ms = 0.0;
  double attention_ms = 0.0;

  double predict_ms(const StepShape& s) const;
  // Milliseconds one more chunk of `n_tokens` positions from `pos` adds to a step.
  double chunk_ms(int pos, int n_tokens, bool decode) const;
  // The most positions (<= max_tokens) of a prefill chunk from `pos` that add at most
  // `allowance_ms`; 0 when not even one fits.
  int max_prefill_tokens(int pos, double allowance_ms, int max_tokens) const;
};

// Roughly a Llama-3-8B in BF16 on one H100 (the simulated backend's defaults): a prior that is
// wrong elsewhere by a factor the fit corrects within tens of steps.
StepCoefficients default_step_prior();

struct StepModelOptions {
  StepCoefficients prior = default_step_prior();
  double forgetting = 0.99;   // per observed step: ~100 steps of memory
  double prior_weight = 0.1;  // pseudo-observations of the prior, per feature
  double outlier_ratio = 4.0;

  bool valid() const;
};

class StepTimeModel {
 public:
  explicit StepTimeModel(StepModelOptions options = {});

  double predict_ms(const StepShape& s) const { return coefficients_.predict_ms(s); }
  // Learns from one step that took `measured_ms`.
  void observe(const StepShape& s, double measured_ms);
  const StepCoefficients& coefficients() const { return coefficients_; }
  uint64_t samples() const { return samples_; }

  static constexpr int kFeatures = 5;

 private:
  using Vec = std::array<double, kFeatures>;
  static Vec features(const StepShape& s);  // scaled so that typical values are O(1)
  void solve();

  StepModelOptions options_;
  Vec prior_theta_{};  // the prior, in scaled units
  std::array<Vec, kFeatures> xtx_{};
  Vec xty_{};
  StepCoefficients coefficients_;
  uint64_t samples_ = 0;
};

}  // namespace turbine::engine
