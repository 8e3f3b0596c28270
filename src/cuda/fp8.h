// FP8 E4M3 on the device (issue 28): the input quantization of the linear layers of an FP8
// checkpoint (per token, or with the checkpoint's static scale), fused into RMSNorm and SwiGLU;
// the skinny FP8 GEMV of decode steps; the per-row x per-column scale epilogue of cuBLASLt's FP8
// GEMM (Gemm::matmul_fp8).
//
// Quantized activations are E4M3 bytes [rows][cols] with one f32 scale per row: value = e4m3 ·
// scale. Dynamic scales are max(|row|max / 448, model::kFp8MinScale) and values e4m3(x / scale)
// (round to nearest even, saturating), exactly as model::quantize_input_row does on the CPU; a
// static scale s > 0 is written to every row's scale. Weights are E4M3 [n][k] with one f32 scale
// per output row (per-tensor scales are expanded at upload).
//
// Every function only enqueues on `stream` (argument errors before anything is enqueued), like
// cuda/kernels.h; dtype is the activations' (F32, F16, BF16). `pdl` as in cuda/launch.cuh.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/status.h"
#include "model/model.h"

namespace turbine::cuda {

// FP8 GEMMs (cuBLASLt E4M3 tensor cores) and the FP8 KV cache need compute capability 8.9+
// (Ada, Hopper and later). False when the device cannot be queried.
bool fp8_device(int device);

// q[r], scales[r] = quantize(x[r]) for `rows` rows of `cols` elements, rows `x_stride` elements
// apart. static_scale > 0: that scale; 0: dynamic per row.
Status quantize_fp8_rows(cudaStream_t stream, model::DType dtype, uint8_t* q, float* scales,
                         const void* x, int rows, int cols, int64_t x_stride, float static_scale,
                         bool pdl = false);

// The pre-norm step with the next linear layer's input quantization: with `x`, residual[r] +=
// x[r] (stored in dtype, as add_rmsnorm does); then q[r], scales[r] = quantize(rmsnorm(residual
// [r]) · weight). `x` null: residual is only read (the first layer's rmsnorm).
Status rmsnorm_fp8(cudaStream_t stream, model::DType dtype, uint8_t* q, float* scales,
                   void* residual, const void* x, const void* weight, int rows, int dim, float eps,
                   float static_scale, bool pdl = false);

// q[t], scales[t] = quantize(silu(gate[t]) · up[t]) over `ffn` elements; gate/up rows are
// `in_stride` elements apart (the fused [gate | up] GEMM output: up = gate + ffn).
Status swiglu_fp8(cudaStream_t stream, model::DType dtype, uint8_t* q, float* scales,
                  const void* gate, const void* up, int rows, int ffn, int64_t in_stride,
                  float static_scale, bool pdl = false);

// In place: y[r][c] *= row_scale[r] · col_scale[c] (the epilogue of a GEMM over raw E4M3 values).
Status scale_rows_cols(cudaStream_t stream, model::DType dtype, void* y, int rows, int cols,
                       const float* row_scale, const float* col_scale, bool pdl = false);

// Skinny FP8 GEMM for 1 <= m <= kGemvMaxRows: y[r][j] = x_scale[r] · w_scale[j] · Σ_k e4m3(x[r][k])
// · e4m3(w[j][k]), F32 accumulation, stored as `out_dtype`; k % 16 == 0, x and w 16-byte aligned.
// Each output row of W is streamed once (1 byte per weight, dequantized in registers) by `split`
// warps (4 or 16; 0: gemv_split's choice).
Status gemv_fp8(cudaStream_t stream, model::DType out_dtype, const uint8_t* x, const float* x_scale,
                const uint8_t* w, const float* w_scale, void* y, int m, int n, int k,
                bool pdl = false, int split = 0);

// Weight-only FP8 (W8A16) skinny GEMM for 1 <= m <= kGemvMaxRows: y[r][j] = w_scale[j] · Σ_k
// x[r][k] · e4m3(w[j][k]), x and y in `dtype` (BF16 or F32; F32 accumulation), x rows k elements
// apart; k % 16 == 0, x and w 16-byte aligned. No activation quantization: the result differs from
// gemv_fp8's (and the CPU backend's, which quantizes activations per token) by that quantization's
// error only. `rows` output rows per warp (1, 2 or 4) and `split` warps per row group (1, 2, 4,
// 8); 0: w8a16_default_rows / w8a16_default_split.
Status gemv_w8a16(cudaStream_t stream, model::DType dtype, const void* x, const uint8_t* w,
                  const float* w_scale, void* y, int m, int n, int k, bool pdl = false,
                  int split = 0, int rows = 0);
// The same with y stored as `out_dtype`: dtype, or F32 (the LM head's logits from BF16
// activations: CudaBackendOptions::fp8_lm_head).
Status gemv_w8a16_out(cudaStream_t stream, model::DType dtype, model::DType out_dtype,
                      const void* x, const uint8_t* w, const float* w_scale, void* y, int m, int n,
                      int k, bool pdl = false, int split = 0, int rows = 0);
// The gate|up projection of an FP8 [2 · ffn][k] weight (scales [2 · ffn]) with SwiGLU applied,
// as gemv_w8a16 then swiglu() would compute it (g and u rounded to dtype first): y [m][ffn].
// `rows` 2 or 4 (half gate rows, half the matching up rows).
Status gemv_w8a16_swiglu(cudaStream_t stream, model::DType dtype, const void* x, const uint8_t* w,
                         const float* w_scale, void* y, int m, int ffn, int k, bool pdl = false,
                         int split = 0, int rows = 0);
int w8a16_default_split(int n, int k);
int w8a16_default_rows(int m, bool swiglu);

}  // namespace turbine::cuda
