// Sampling parameters and the sampler: logits -> one token, with optional logprobs.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "common/status.h"
#include "structured/constraint_spec.h"

namespace turbine::engine {

struct SamplingParams {
  float temperature = 1.0f;  // 0: greedy (argmax, lowest id on ties)
  float top_p = 1.0f;        // (0, 1]
  int top_k = 0;             // <= 0: off
  float min_p = 0.0f;        // [0, 1]
  std::optional<uint64_t> seed;
  float presence_penalty = 0.0f;    // on generated tokens, OpenAI semantics
  float frequency_penalty = 0.0f;   // on generated tokens, OpenAI semantics
  float repetition_penalty = 1.0f;  // on prompt + generated tokens, CTRL/HF semantics
  int max_tokens = 16;              // 0: prefill only, one final output with no token (length)
  int min_tokens = 0;  // EOS and stop_token_ids cannot be sampled before this many tokens
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;
  int n_logprobs = -1;  // -1: none; 0: the sampled token's; k: plus the top k
  // Added to the logits of these token ids before sampling (after penalties, before temperature);
  // sorted by id, unique, each bias in [-100, 100]. Logprobs still describe the model's own
  // distribution.
  std::vector<std::pair<int32_t, float>> logit_bias;
  // The choices of one prompt (n > 1) share a non-zero group id, unique among the live requests
  // of their frontend (random). An engine computes the group's prompt once: later members wait
  // until the first one's prompt blocks are in the prefix cache, then reuse them (Engine); a
  // router sends a group to one worker. 0: no group.
  uint64_t prompt_group = 0;
  // Prompt logprobs (completions' echo + logprobs, lm-eval loglikelihood): -1 none; k >= 0: each
  // prompt token after the first scored by the logits of the position before it, plus the top k.
  // Only on backends that return all-position logits (Backend::supports_all_logits). With it,
  // max_tokens 0 scores the prompt and generates nothing.
  int prompt_logprobs = -1;
  // What the output must match (structured outputs, src/structured); kNone: unconstrained.
  // constraint.start (reasoning models): the constraint starts after the reasoning block ends;
  // until then the sequence samples without a mask.
  structured::ConstraintSpec constraint;
  // The last `constraint_replay` prompt tokens were generated under `constraint` before this
  // request reached this engine (a migration, or the first token a disaggregated prefill worker
  // sampled): the engine replays them into the sequence's matcher before it samples. They include
  // the reasoning and its end marker when the constraint has a start trigger.
  int constraint_replay = 0;
  // Priority class (vLLM's `priority`): lower values are served earlier; any int, default 0. Only
  // an engine with the priority scheduling policy accepts a non-zero value (engine/scheduler.h);
  // routers, disaggregation and the request plane carry it unchanged.
  int priority = 0;

  Status validate() const;
};

struct SampledToken {
  int32_t token = 0;
  float logprob = 0.0f;  // log-softmax of the model's logits (before penalties and temperature)
  std::vector<std::pair<int32_t, float>> top_logprobs;
};

// log-softmax(logits)[token] and the k best (id, logprob), best first, lowest id on ties: how a
// prompt token is scored (SamplingParams::prompt_logprobs). Unlike Sampler::sample, nothing is
// drawn and no penalty applies.
SampledToken score_token(std::span<const float> logits, int32_t token, int k);

// Per-sequence sampler state: the RNG and the generated-token counts penalties need.
// Owned by the engine thread.
class Sampler {
 public:
  // `eos_token_ids` are suppressed, with params.stop_token_ids, until params.min_tokens tokens
  // were sampled (EOS only when !params.ignore_eos).
  Sampler(const SamplingParams& params, std::span<const int32_t> prompt, int32_t n_vocab,
          std::span<const int32_t> eos_token_ids = {});

  // Samples from `logits` (modified in place: penalties, temperature) and records the token.
  // `allowed` (structured outputs): a bitmask over the ids, bit (id % 32) of word (id / 32);
  // ids outside it are never drawn (ids past its end neither). Logprobs stay the model's.
  SampledToken sample(std::span<float> logits, std::span<const uint32_t> allowed = {});

 private:
  void apply_penalties(std::span<float> logits) const;

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<int32_t> output_counts_;  // per vocab id, generated tokens only
  std::vector<uint8_t> seen_;           // per vocab id: in prompt or generated
  std::vector<int32_t> scratch_ids_;
  std::vector<double> scratch_probs_;
  std::vector<int32_t> min_tokens_suppressed_;  // in-vocabulary ids masked before min_tokens
  int n_sampled_ = 0;
};

}  // namespace turbine::engine
