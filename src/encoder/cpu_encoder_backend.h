// The CPU encoder backend: BERT / RoBERTa / ModernBERT forward passes in f32 over padding-free
// batches, on the engine module's matmul kernels (register-blocked AVX-512/AVX2, split by output
// rows over a thread pool). Weights stay in their mapped dtype (F32 read in place; F16/BF16
// converted a few rows at a time); norms and biases are copied to f32 once.
//
// Thread ownership: the encoder engine thread calls forward(); the pool's workers only run the
// kernels forward() hands them. The weights must outlive the backend.
#pragma once

#include <memory>

#include "common/status.h"
#include "encoder/encoder_backend.h"
#include "encoder/encoder_config.h"
#include "encoder/encoder_weights.h"

namespace turbine::encoder {

struct CpuEncoderOptions {
  int n_threads = 0;  // 0: all hardware threads
};

Result<std::unique_ptr<EncoderBackend>> make_cpu_encoder_backend(const EncoderConfig& config,
                                                                 const EncoderWeights& weights,
                                                                 const CpuEncoderOptions& options);

}  // namespace turbine::encoder
