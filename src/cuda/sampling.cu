#include "cuda/sampling.h"

#include <curand_kernel.h>

#include <cfloat>

#include "cuda/device.h"
#include "cuda/dtype_util.cuh"

namespace turbine::cuda {
namespace {

constexpr int kThreads = 1024;

struct ArgMax {
  float v;
  int i;
};

__device__ __forceinline__ ArgMax better(ArgMax a, ArgMax b) {
  return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a;
}

__device__ ArgMax block_argmax(ArgMax x) {
  __shared__ float sv[32];
  __shared__ int si[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    x = better(x,
               ArgMax{__shfl_xor_sync(0xffffffffu, x.v, o), __shfl_xor_sync(0xffffffffu, x.i, o)});
  __syncthreads();
  if (lane == 0) {
    sv[warp] = x.v;
    si[warp] = x.i;
  }
  __syncthreads();
  ArgMax r{-FLT_MAX, 0x7fffffff};
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) r = better(r, ArgMax{sv[w], si[w]});
  return r;
}

// Sum (f) over the block; every thread gets it.
__device__ float block_sum_f(float v) {
  __shared__ float s[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if (lane == 0) s[warp] = v;
  __syncthreads();
  float r = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) r += s[w];
  return r;
}

template <typename T>
__global__ void argmax_kernel(const T* __restrict__ logits, int vocab, int32_t* __restrict__ out) {
  const T* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  ArgMax best{-FLT_MAX, 0x7fffffff};
  for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    best = better(best, ArgMax{to_float(row[i]), i});
  best = block_argmax(best);
  if (threadIdx.x == 0) out[blockIdx.x] = best.i == 0x7fffffff ? 0 : best.i;
}

// One block per row. Thresholds are found on the scaled logits z = logit / T:
//   top-k: the largest tau with count(z >= tau) >= k;
//   top-p: the largest tau with sum(softmax(z) over z >= tau) >= p.
// Each is a 40-step bisection over [min z, max z]; the candidate set is z >= max(tau_k, tau_p).
// Structured outputs: whether id i is allowed by the row's mask (null: every id). Disallowed ids
// are skipped by every pass below, exactly as if their logits were -inf (no -inf arithmetic:
// the bisections need finite bounds).
__device__ __forceinline__ bool allowed(const uint32_t* __restrict__ mask, int mask_words, int i) {
  return mask == nullptr || ((i >> 5) < mask_words && ((mask[i >> 5] >> (i & 31)) & 1u) != 0);
}

template <typename T>
__global__ void sample_kernel(const T* __restrict__ logits, int vocab,
                              const SampleParams* __restrict__ params, int32_t* __restrict__ out,
                              const uint32_t* __restrict__ masks, int mask_words) {
  const T* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  const SampleParams p = params[blockIdx.x];
  const uint32_t* mask = (p.masked != 0 && masks != nullptr)
                             ? masks + static_cast<int64_t>(blockIdx.x) * mask_words
                             : nullptr;
  ArgMax best{-FLT_MAX, 0x7fffffff};
  if (p.temperature <= 0.0f) {
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
      if (allowed(mask, mask_words, i)) best = better(best, ArgMax{to_float(row[i]), i});
    best = block_argmax(best);
    if (threadIdx.x == 0) out[blockIdx.x] = best.i == 0x7fffffff ? 0 : best.i;
    return;
  }
  const float inv_t = 1.0f / p.temperature;
  // Max and min via the argmax reduction (value only).
  float zmax = -FLT_MAX, zmin = FLT_MAX;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    if (!allowed(mask, mask_words, i)) continue;
    const float z = to_float(row[i]) * inv_t;
    zmax = fmaxf(zmax, z);
    zmin = fminf(zmin, z);
  }
  zmax = block_argmax(ArgMax{zmax, 0}).v;
  zmin = -block_argmax(ArgMax{-zmin, 0}).v;

  float tau = zmin;
  if (p.top_k > 0 && p.top_k < vocab) {
    float a = zmin, b = zmax;  // invariant: count(z >= a) >= k
    for (int it = 0; it < 40; ++it) {
      const float mid = 0.5f * (a + b);
      float c = 0.0f;
      for (int i = threadIdx.x; i < vocab; i += blockDim.x)
        c += (allowed(mask, mask_words, i) && to_float(row[i]) * inv_t >= mid);
      c = block_sum_f(c);
      if (c >= static_cast<float>(p.top_k))
        a = mid;
      else
        b = mid;
    }
    tau = fmaxf(tau, a);
  }
  if (p.top_p < 1.0f) {
    float total = 0.0f;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
      if (allowed(mask, mask_words, i)) total += __expf(to_float(row[i]) * inv_t - zmax);
    total = block_sum_f(total);
    float a = zmin, b = zmax;  // invariant: mass(z >= a) >= p * total
    for (int it = 0; it < 40; ++it) {
      const float mid = 0.5f * (a + b);
      float s = 0.0f;
      for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        const float z = to_float(row[i]) * inv_t;
        if (z >= mid && allowed(mask, mask_words, i)) s += __expf(z - zmax);
      }
      s = block_sum_f(s);
      if (s >= p.top_p * total)
        a = mid;
      else
        b = mid;
    }
    tau = fmaxf(tau, a);
  }
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float z = to_float(row[i]) * inv_t;
    if (z < tau || !allowed(mask, mask_words, i)) continue;
    curandStatePhilox4_32_10_t st;
    curand_init(p.seed, static_cast<unsigned long long>(i), p.step * 4ull, &st);
    const float u = fmaxf(curand_uniform(&st), 1e-20f);  // (0, 1]
    best = better(best, ArgMax{z - __logf(-__logf(u)), i});
  }
  best = block_argmax(best);
  if (threadIdx.x == 0) out[blockIdx.x] = best.i == 0x7fffffff ? 0 : best.i;
}

// One block per row, one thread per bias entry (ids are distinct: no two threads write one logit).
__global__ void logit_bias_kernel(float* __restrict__ logits, int vocab,
                                  const SampleParams* __restrict__ params) {
  const SampleParams& p = params[blockIdx.x];
  const int i = static_cast<int>(threadIdx.x);
  if (i >= p.n_bias) return;
  const int id = p.bias_ids[i];
  if (id >= 0 && id < vocab)
    logits[static_cast<int64_t>(blockIdx.x) * vocab + id] += p.bias_values[i];
}

}  // namespace

Status add_logit_bias(cudaStream_t stream, float* logits, int n_rows, int vocab,
                      const SampleParams* params) {
  if (n_rows < 0 || vocab <= 0 || params == nullptr)
    return invalid_argument("logit bias: bad args");
  if (n_rows == 0) return Status::ok();
  logit_bias_kernel<<<n_rows, kMaxRowLogitBias, 0, stream>>>(logits, vocab, params);
  return check_launch("logit_bias");
}

Status argmax(cudaStream_t stream, model::DType dtype, const void* logits, int n_rows, int vocab,
              int32_t* out) {
  if (n_rows < 0 || vocab <= 0) return invalid_argument("argmax: bad shape");
  if (n_rows == 0) return Status::ok();
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    argmax_kernel<T><<<n_rows, kThreads, 0, stream>>>(static_cast<const T*>(logits), vocab, out);
  });
  if (!ok) return invalid_argument("argmax: dtype");
  return check_launch("argmax");
}

Status sample(cudaStream_t stream, model::DType dtype, const void* logits, int n_rows, int vocab,
              const SampleParams* params, int32_t* out, const uint32_t* masks, int mask_words) {
  if (n_rows < 0 || vocab <= 0 || params == nullptr || mask_words < 0 ||
      (masks != nullptr && mask_words == 0))
    return invalid_argument("sample: bad args");
  if (n_rows == 0) return Status::ok();
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    sample_kernel<T><<<n_rows, kThreads, 0, stream>>>(static_cast<const T*>(logits), vocab, params,
                                                      out, masks, mask_words);
  });
  if (!ok) return invalid_argument("sample: dtype");
  return check_launch("sample");
}

}  // namespace turbine::cuda
