// Y = X · Wᵀ through cuBLASLt, the projection of every linear layer.
//
// X is [m][k] row-major activations, W is [n][k] row-major weights (the layout GGUF and
// safetensors store), Y is [m][n]. F16/BF16 inputs accumulate in F32; F32 inputs use plain F32
// math (no TF32) so that parity tests can hold F32 to 1e-5. The descriptors and the heuristic's
// algorithm are cached per (m, n, k, dtype): a decode step repeats the same few shapes.
//
// Thread ownership: one Gemm per engine stream, used by the engine thread only.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "common/status.h"
#include "cuda/device.h"
#include "model/model.h"

namespace turbine::cuda {

// Skinny path for F16/BF16 with m <= kGemvMaxRows and k % 8 == 0 (decode of a few sequences):
// a few warps per output column stream its weight row once. Output in the input dtype or F32.
// Gemm::matmul takes it for m <= kGemvFastRows where gemv_preferred says it beats cuBLASLt.
inline constexpr int kGemvMaxRows = 8;
inline constexpr int kGemvFastRows = 2;
bool gemv_applies(model::DType dtype, model::DType out_dtype, int m, int k);
bool gemv_preferred(int m);  // Gemm::matmul's choice when gemv applies (any shape)
// Warps per row of W (split-K inside a block: 1, 2, 4, 8 or 16) gemv uses by default for a shape.
int gemv_split(int n, int k);
// `split` 0: gemv_split(n, k).
Status gemv(cudaStream_t stream, model::DType dtype, const void* x, const void* w, void* y, int m,
            int n, int k, model::DType out_dtype, bool pdl = false, int split = 0);
// y[r][i] = silu(g) * u for i < ffn, with g = x[r]·w[i] and u = x[r]·w[ffn + i] (each rounded to
// dtype, as a GEMM would store them): the gate|up projection and SwiGLU of a decode step in one
// pass over w [2 * ffn][k]. Same conditions as gemv (gemv_applies with out_dtype = dtype).
Status gemv_swiglu(cudaStream_t stream, model::DType dtype, const void* x, const void* w, void* y,
                   int m, int ffn, int k, bool pdl = false, int split = 0);

class Gemm {
 public:
  static constexpr size_t kWorkspaceBytes = 32u << 20;

  static Result<Gemm> create();
  Gemm(Gemm&&) noexcept;
  Gemm& operator=(Gemm&&) noexcept;
  ~Gemm();

  // Enqueues y = x · wᵀ on `stream` (beta = 0: y is overwritten).
  Status matmul(cudaStream_t stream, model::DType dtype, const void* x, const void* w, void* y,
                int m, int n, int k) {
    return matmul(stream, dtype, x, w, y, m, n, k, dtype);
  }
  // The same with y stored as `out_dtype` (F32 output of F16/BF16 inputs: the LM head's logits).
  // Small m with F16/BF16 where gemv_preferred goes to gemv() (no cuBLASLt plan) unless
  // use_gemv(false) was called.
  Status matmul(cudaStream_t stream, model::DType dtype, const void* x, const void* w, void* y,
                int m, int n, int k, model::DType out_dtype);

  // y = x · wᵀ + bias, the bias ([n] in dtype, one per output column) added by cuBLASLt's BIAS
  // epilogue to the F32 accumulator before the store (one rounding; no separate pass over y).
  // Never takes the gemv path. kUnimplemented when cuBLASLt has no such algorithm for the shape:
  // the caller then runs matmul() and adds the bias itself.
  Status matmul_bias(cudaStream_t stream, model::DType dtype, const void* x, const void* w,
                     const void* bias, void* y, int m, int n, int k);

  // Times up to `max_candidates` of cuBLASLt's heuristic algorithms for the shape (the first is
  // the heuristic's own choice, the one matmul uses untuned) and keeps the fastest for every
  // later cuBLASLt call of the shape. Each candidate runs `reps` times over every weight matrix in
  // `ws` (several matrices, like a step's layers, so that L2 does not hold them); y is
  // overwritten. Returns microseconds per call for each candidate, -1 for one that did not run.
  // Not while `stream` captures a graph (an internal error then). Never takes the gemv path.
  static constexpr int kMaxTuneCandidates = 8;
  Result<std::vector<float>> tune(cudaStream_t stream, model::DType dtype, const void* x,
                                  const std::vector<const void*>& ws, void* y, int m, int n, int k,
                                  model::DType out_dtype, int max_candidates = kMaxTuneCandidates,
                                  int reps = 2);

  // Whether matmul sends this shape to gemv (given 16-byte aligned x and w) rather than cuBLASLt.
  bool takes_gemv(model::DType dtype, model::DType out_dtype, int m, int k) const;
  size_t cached_plans() const;
  void use_gemv(bool on) { use_gemv_ = on; }
  // gemv for every shape it applies to (not only wide outputs): decode steps of a few sequences
  // then run no cuBLASLt kernel, so every projection can take part in PDL.
  void gemv_all(bool on) { gemv_all_ = on; }
  // Launch gemv with programmatic dependent launch (launch.cuh; the caller checks sm_90+).
  void use_pdl(bool on) { pdl_ = on; }
  // y = swiglu(x · wᵀ) through gemv_swiglu when the skinny path is on and applies (F16/BF16,
  // m = 1, or m <= kGemvMaxRows with gemv_all; aligned); false when the caller must run
  // matmul + swiglu instead.
  bool fused_swiglu_applies(model::DType dtype, const void* x, const void* w, int m, int k) const;
  Status matmul_swiglu(cudaStream_t stream, model::DType dtype, const void* x, const void* w,
                       void* y, int m, int ffn, int k) {
    return gemv_swiglu(stream, dtype, x, w, y, m, ffn, k, pdl_);
  }

  // FP8 (issue 28, cuda/fp8.h): y [m][n] in `out_dtype` (F32 or BF16; F16 cannot hold the raw
  // E4M3 sums) = x_scale[r] · w_scale[j] · Σ e4m3 x[r] · e4m3 w[j], x [m][k] and w [n][k] E4M3
  // bytes, k % 16 == 0, pointers 16-byte aligned. Small m as gemv() (the skinny path's rule) goes
  // to gemv_fp8; the rest to cuBLASLt's E4M3 GEMM (F32 accumulation, sm_89+) with unit scales,
  // then scale_rows_cols applies both scale vectors to y in place.
  Status matmul_fp8(cudaStream_t stream, model::DType out_dtype, const uint8_t* x,
                    const float* x_scale, const uint8_t* w, const float* w_scale, void* y, int m,
                    int n, int k);
  // matmul_fp8 without its last pass, for a caller that times the two apart (the backend's op
  // profile): enqueues the product and returns whether y still needs
  // scale_rows_cols(y, x_scale, w_scale) (the cuBLASLt path without outer-vector scales); false
  // when y is final (gemv_fp8, or cuBLASLt applied the scales).
  Result<bool> matmul_fp8_product(cudaStream_t stream, model::DType out_dtype, const uint8_t* x,
                                  const float* x_scale, const uint8_t* w, const float* w_scale,
                                  void* y, int m, int n, int k);
  // Opt-in (CudaBackendOptions::fp8_outer_vec_scales): the cuBLASLt path passes both scale
  // vectors to cuBLASLt (outer-vector scaling, cuBLAS 12.9+) instead of running scale_rows_cols;
  // a shape cuBLASLt has no such algorithm for keeps the epilogue. Not yet run on a GPU here.
  void fp8_outer_vec(bool on) { fp8_outer_vec_ = on; }
  // Opt-in (CudaBackendOptions::fp8_fast_accum): FP8 plans made after this call set cuBLASLt's
  // FAST_ACCUM (the tensor cores' own accumulator for the whole k loop, no periodic promotion to
  // F32: faster on Hopper, a little less precise for long k). Call before the first matmul_fp8.
  void fp8_fast_accum(bool on) { fp8_fast_accum_ = on; }
  // Whether matmul_fp8 sends this shape to gemv_fp8.
  bool takes_gemv_fp8(int m, int k) const {
    return use_gemv_ && m >= 1 && m <= kGemvMaxRows && k % 16 == 0 &&
           (gemv_all_ || gemv_preferred(m));
  }

 private:
  struct Plan;
  struct State;
  Gemm() = default;
  // outer_vec (FP8 only): the plan applies per-row A and per-column B scale vectors itself
  // (CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F); kUnimplemented when cuBLASLt has no algorithm.
  // bias_epilogue: the plan adds a per-column bias vector (CUBLASLT_EPILOGUE_BIAS; the pointer
  // is set per call).
  Result<Plan*> plan_for(model::DType dtype, model::DType out_dtype, int m, int n, int k,
                         bool outer_vec = false, bool bias_epilogue = false);
  // Up to `count` of cuBLASLt's algorithms for the plan's shape, best first.
  Result<std::vector<cublasLtMatmulAlgo_t>> heuristic(const Plan& plan, int count);
  // Enqueues y = x · wᵀ with the plan's shape and `algo` (beta = 0).
  cublasStatus_t launch(cudaStream_t stream, const Plan& plan, const cublasLtMatmulAlgo_t& algo,
                        const void* x, const void* w, void* y);

  std::unique_ptr<State> state_;
  bool use_gemv_ = true;
  bool fp8_outer_vec_ = false;
  bool fp8_fast_accum_ = false;
  bool gemv_all_ = false;
  bool pdl_ = false;
};

}  // namespace turbine::cuda
