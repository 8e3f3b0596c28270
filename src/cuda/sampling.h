// Token selection on the device, so a decode step ends with n_rows int32 ids and no logits copy.
//
// Sampling uses the Gumbel-max trick: argmax(logit / T + Gumbel noise) is a draw from
// softmax(logit / T). Top-k and top-p restrict the candidates to logits at or above a threshold
// found by bisection over the row (no sort). Noise comes from Philox keyed by (seed, step):
// the same seed and step give the same token on any run.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/status.h"
#include "model/model.h"

namespace turbine::cuda {

// logit_bias entries a row carries to the device (engine::kMaxDeviceLogitBias).
inline constexpr int kMaxRowLogitBias = 16;

// Device-side parameters of one row (one sequence of the batch).
struct SampleParams {
  float temperature = 1.0f;  // <= 0: greedy
  int32_t top_k = 0;         // <= 0: off
  float top_p = 1.0f;        // >= 1: off
  // Structured outputs: non-zero when row r's allowed-token bitmask is at masks + r * mask_words
  // (sample()'s arguments); only those ids are candidates (greedy, top-k and top-p included).
  int32_t masked = 0;
  uint64_t seed = 0;
  uint64_t step = 0;  // advances per generated token so that draws differ between steps
  // logit_bias: bias_values[i] is added to the logit of bias_ids[i], i < n_bias (distinct ids).
  int32_t n_bias = 0;
  int32_t bias_ids[kMaxRowLogitBias] = {};
  float bias_values[kMaxRowLogitBias] = {};
};

// out[r] = argmax over logits[r][0 .. vocab), lowest index on ties.
Status argmax(cudaStream_t stream, model::DType dtype, const void* logits, int n_rows, int vocab,
              int32_t* out);

// logits[r][params[r].bias_ids[i]] += params[r].bias_values[i], in place (F32 logits), before
// argmax/sample.
Status add_logit_bias(cudaStream_t stream, float* logits, int n_rows, int vocab,
                      const SampleParams* params);

// out[r] = a token drawn from row r under params[r] (device array). `masks` (device, n_rows x
// mask_words words; bit id % 32 of word id / 32 set = allowed; ids past mask_words * 32 are not)
// restricts the rows whose params say `masked`; may be null when none does. A row whose mask
// allows nothing gets id 0.
Status sample(cudaStream_t stream, model::DType dtype, const void* logits, int n_rows, int vocab,
              const SampleParams* params, int32_t* out, const uint32_t* masks = nullptr,
              int mask_words = 0);

}  // namespace turbine::cuda
