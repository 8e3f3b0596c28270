// The CUDA encoder backend (issue 27): an encoder::EncoderBackend for BERT, RoBERTa / XLM-R and
// ModernBERT on one GPU, over padding-free batches.
//
// Weights are uploaded once in `dtype` (BF16 by default; F16, or F32 for parity runs), with Q/K/V
// concatenated into one [3 dim, dim] matrix (ModernBERT's Wqkv as stored) and ModernBERT's Wi
// kept as one [2 ffn, dim] input|gate matrix, so each is one GEMM; LayerNorm parameters stay F32.
// A forward pass is one host->device copy of a packed int32 staging buffer (ids, type ids,
// positions, sequence offsets, pooling descriptors), then per layer:
//   BERT        QKV GEMM -> attention (+ the QKV bias) -> O GEMM -> residual+bias+LayerNorm -> up
//   GEMM ->
//               bias+GELU -> down GEMM -> residual+bias+LayerNorm
//   ModernBERT  QKV GEMM -> RoPE (global or local theta) -> attention (sliding window on local
//               layers) -> O GEMM -> residual+LayerNorm -> Wi GEMM -> GeGLU -> down GEMM ->
//               residual + the next layer's (or the final) LayerNorm
// on one stream (cuBLASLt GEMMs through cuda::Gemm over the packed token rows; the fused kernels
// of cuda/encoder_kernels.h; cuda/encoder_attention.h), then the pooling kernel (CLS, mean, last
// token, max, or every token's row) and one device->host copy of the F32 rows, the pass's only
// synchronisation. GEMM row counts are rounded up to a bucket (16 rows up to 256, then 256) so
// that a long-running server holds a bounded number of cuBLASLt plans; the rows past the batch
// are scratch that nothing reads.
//
// Switches for the throughput work (issue 27, each A/B'd by bench/encoder_throughput_bench):
// bias_epilogue adds the Q/K/V and FFN-up biases inside the cuBLASLt GEMMs (one rounding, no
// separate pass over the QKV rows); fused_qkv_bias adds the Q/K/V biases inside attention;
// vector_kernels runs the bias+activation and residual+LayerNorm
// passes with 16-byte loads (same per-element arithmetic); prune_last_layer runs BERT's last
// O projection and FFN over the rows pooling reads only (CLS / last-token batches); tune_gemms
// times cuBLASLt's candidates once per GEMM shape; profile records
// each op's GPU time (cuda/op_timer.h).
//
// Thread ownership: created on any thread, then used by the encoder engine thread only. The
// weights are copied at creation; the EncoderWeights need not outlive the backend. `profile` is
// written on the engine thread during forward() and may be read from others (its own mutex).
#pragma once

#include <memory>

#include "common/status.h"
#include "cuda/op_timer.h"
#include "encoder/encoder_backend.h"
#include "encoder/encoder_config.h"
#include "encoder/encoder_weights.h"
#include "model/model.h"

namespace turbine::cuda {

struct CudaEncoderOptions {
  int device = 0;
  model::DType dtype = model::DType::kBF16;  // weights and activations: kBF16, kF16 or kF32
  // Scratch is sized for this many tokens up front (grown when a batch needs more).
  int max_batch_tokens = 32768;
  // The tensor-core attention kernel where it applies (F16/BF16, head_dim 64 or 128).
  bool tensor_core_attention = true;
  // Picked by the H100 run of tests/gpu/run.sh encprof (docs/PERFORMANCE.md, 2026-12-07):
  // vector_kernels on (1.29-1.31x on every BERT-base workload); the others stay off (mixed or
  // slower there: the BIAS epilogue makes cuBLASLt pick slower kernels at some shapes, tuning per
  // shape costs more than it gains with varying batch sizes).
  // Q/K/V and FFN-up biases through cuBLASLt's BIAS epilogue (falls back to the separate bias
  // kernels for a shape cuBLASLt has no such algorithm for).
  bool bias_epilogue = false;
  // 16-byte loads and stores in the bias+activation and residual+LayerNorm kernels where the
  // widths and pointers allow.
  bool vector_kernels = true;
  // BERT / RoBERTa: the Q/K/V biases inside the attention kernel (encoder_attention.h) instead
  // of a separate pass over the QKV rows (11% of BERT-base's forward on the H100).
  bool fused_qkv_bias = true;
  // BERT / RoBERTa batches whose every output is one pooled row (CLS or last token): the last
  // layer runs attention over all tokens, then O and the FFN over the pooled rows only.
  bool prune_last_layer = false;
  // The first time a GEMM shape (rows, n, k) comes up, time cuBLASLt's heuristic candidates
  // (Gemm::tune, a synchronisation) and keep the fastest; plain GEMMs only, not the epilogue's.
  bool tune_gemms = false;
  // Non-null: every forward() records per-op GPU times and its wall time here.
  std::shared_ptr<OpTimer> profile;
};

Result<std::unique_ptr<encoder::EncoderBackend>> make_cuda_encoder_backend(
    const encoder::EncoderConfig& config, const encoder::EncoderWeights& weights,
    const CudaEncoderOptions& options);

}  // namespace turbine::cuda
