// The CUDA implementation of engine::Backend: the whole forward pass of a Llama-family model
// (Llama, Mistral without sliding window, Qwen2, Qwen3) on one GPU, over a paged KV cache in
// device memory.
//
// Weights are uploaded once in `dtype` (BF16, F16, or F32 for parity tests); Q/K/V and gate/up
// are concatenated at upload so that each is one GEMM. Activations are stored in `dtype`,
// reductions and GEMM accumulation run in F32, and the LM head writes F32 logits. A step is one
// host->device copy of a packed int32 staging buffer (token ids, positions, slot mapping, block
// tables, context lengths, logit rows), every kernel of every layer on one stream, and one
// device->host copy of the logits of the chunks that want them, followed by the step's only
// synchronisation.
//
// Thread ownership: built on any thread, then used by one thread at a time (the engine thread).
#pragma once

#include <cstdint>
#include <memory>

#include "common/status.h"
#include "engine/backend.h"
#include "model/model.h"
#include "tp/communicator.h"
#include "tp/shard.h"

namespace turbine::cuda {

class OpTimer;  // cuda/op_timer.h

struct CudaBackendOptions {
  int device = 0;
  model::DType dtype = model::DType::kBF16;  // weights and activations: kBF16, kF16 or kF32
  int max_context = 0;                       // 0: the model's context length
  int block_size = 16;                       // positions per KV block
  // What the step buffers are sized for before the KV cache takes the rest of the memory; a
  // step that needs more grows them (an allocation, which may fail once the cache is in place).
  int max_num_seqs = 256;
  int max_num_batched_tokens = 8192;
  // KV cache budget: gpu_memory_utilization x total device memory, minus what is in use once
  // weights and step buffers are allocated; kv_cache_memory_bytes > 0 sets the budget instead.
  // Either way at most max_num_seqs full contexts are allocated.
  double gpu_memory_utilization = 0.9;
  int64_t kv_cache_memory_bytes = 0;
  // Decode-only steps replay a CUDA graph per batch-size bucket (captured on first use).
  bool cuda_graphs = true;
  // GEMMs of <= 2 rows (decode of one or two sequences) use the skinny gemv kernel (F16/BF16);
  // with gemv_all every GEMM of <= 8 rows does.
  bool skinny_gemv = true;
  bool gemv_all = false;
  // Programmatic dependent launch between the step's own kernels (sm_90+; ignored before):
  // a kernel is scheduled while the one before it drains (cuda/launch.cuh).
  bool pdl = true;
  // Single-sequence decode steps on the skinny path run gate|up + SwiGLU as one kernel
  // (gemv_swiglu, 8 warps per row: 3 µs per layer faster than gemv + swiglu on the H100); steps
  // of more rows keep the two kernels (fused is slower there) unless gemv_all is on.
  bool fused_swiglu = true;
  // Offers engine::Backend::forward_sample(): tokens drawn on the GPU (cuda/sampling.h), so a
  // step downloads token ids instead of n_vocab logits per sequence.
  bool device_sampling = true;
  // At start-up, times cuBLASLt's candidate algorithms for every decode batch bucket's
  // projections and LM head on the model's own weights and keeps the fastest (Gemm::tune; under
  // a second for an 8B model), FP8 projections' cuBLASLt E4M3 plans included (those of
  // fp8_outer_vec_scales excepted). Off by default: the pick depends on timings, so two backends on
  // the same model may round differently; off uses the heuristic's first choice everywhere.
  bool tune_gemm = false;
  // `--kv-cache-dtype`: kFp8 stores K and V as E4M3 (1 byte per element: twice the positions of
  // BF16 in the same memory) with the checkpoint's per-layer k/v scales (else 1), as the CPU
  // backend does; the attention kernels dequantize on load. Needs compute capability 8.9+
  // (refused at start before that).
  engine::KvCacheDtype kv_cache_dtype = engine::KvCacheDtype::kAuto;
  // FP8 checkpoints (and --quantization fp8): projections with per-tensor or per-channel E4M3
  // weights and per-token or static input scales stay E4M3 on the device (cuBLASLt FP8 GEMMs,
  // gemv_fp8 for decode, inputs quantized in fused RMSNorm/SwiGLU kernels; cuda/fp8.h) with
  // dtype BF16 or F32 on sm_89+. Off, or any other case (F16, sm_80, block-wise scales,
  // tensor parallelism): dequantized to dtype at upload (logged at start).
  bool fp8_weights = true;
  // The FP8 GEMMs on cuBLASLt apply the token and channel scales inside cuBLASLt (outer-vector
  // scaling, cuBLAS 12.9+) instead of a separate epilogue kernel (Gemm::fp8_outer_vec). Off by
  // default until measured on a GPU.
  bool fp8_outer_vec_scales = false;
  // The skinny FP8 projections of decode steps (<= 8 rows): kA8 quantizes the activations per
  // token (fused into RMSNorm/SwiGLU, as the CPU backend) for gemv_fp8; kW8A16 keeps them in dtype
  // and dequantizes only the weights (gemv_w8a16, gate|up fused with SwiGLU when fused_swiglu):
  // fewer kernels and no activation rounding. Steps of more rows use cuBLASLt's FP8 GEMM either
  // way. kW8A16 since the H100 run (docs/PERFORMANCE.md, 2026-12-07): batch-1 decode 1.50x BF16
  // (A8: 1.10x); gemv_bench at one row 2.4-3.1 TB/s of weights vs 1.8-2.6 (A8) and 1.7-2.9
  // (cuBLASLt FP8). At 4 and 8 rows cuBLASLt's FP8 GEMM streams faster than either gemv, so
  // W8A16 takes steps of at most kW8A16MaxRows rows.
  // cuBLASLt FP8 GEMMs with FAST_ACCUM (Gemm::fp8_fast_accum). Off until measured.
  bool fp8_fast_accum = false;
  enum class Fp8Gemv { kA8, kW8A16 };
  Fp8Gemv fp8_gemv = Fp8Gemv::kW8A16;
  // Opt-in (`turbine_generate --fp8-lm-head`), with FP8 projections on the device and kW8A16: an
  // E4M3 copy of the LM head (per-row scales, quantized on the device at start: checkpoints keep
  // it in BF16) serves decode steps of <= 2 rows through gemv_w8a16 with F32 logits, streaming
  // half the bytes of the BF16 head (1.05 -> 0.53 GB a step on Llama-3.1-8B). The logits move by
  // that rounding of the head's weights; larger steps keep the BF16 head. Costs the copy's memory
  // (n_vocab x (dim + 4) bytes) out of the KV cache. Not with tensor parallelism.
  bool fp8_lm_head = false;
  // Tensor parallelism (cuda/tensor_parallel.h fills these): this backend is rank comm->rank() of
  // a group, computing `shard`'s heads, FFN rows and vocabulary rows; it all-reduces after O and
  // down over `comm` on its stream (inside its CUDA graphs too) and gathers the LM-head rows on
  // rank 0, which alone returns logits or samples. A one-rank `comm` runs the whole model through
  // the NCCL code. Both null: no group.
  std::shared_ptr<const tp::RankWeights> shard;
  std::shared_ptr<tp::Communicator> comm;
  // The decoder's op profile (`turbine_generate --profile-ops`): every op of a step bracketed with
  // CUDA events by kind (embedding, norms, each projection, FP8 quantize passes and scale
  // epilogues apart, attention, LM head, sampling, the step's copies) and each forward()'s wall
  // time added (OpTimer::add_wall). Steps then run eagerly (no CUDA graphs: a graph's kernels
  // cannot be bracketed one by one) and the events cost a little GPU time each, so compare
  // throughput with a run without it. The caller reads and resets the timer between steps (it is
  // written on the engine thread inside forward()). Null: no profile, no cost.
  std::shared_ptr<OpTimer> profile;
  // With the profile: each step's kernels are held back until the host has enqueued them all
  // (cuda/launch_hold.h), so that they run back to back as in a graph and no op's time includes
  // waiting for the host's next launch. forward()'s wall time then includes the whole enqueue.
  bool profile_hold = true;
};

// Bytes of K and V for one position across all layers, stored in `dtype` (kv_dtype kAuto) or
// E4M3 (kFp8: one byte per element).
int64_t cuda_kv_bytes_per_token(const model::ModelConfig& config, model::DType dtype,
                                engine::KvCacheDtype kv_dtype = engine::KvCacheDtype::kAuto);

Result<std::unique_ptr<engine::Backend>> make_cuda_backend(const model::Model& model,
                                                           const CudaBackendOptions& options);

}  // namespace turbine::cuda
