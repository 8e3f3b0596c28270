#include "cuda/kv_copy.h"

#include <cstdint>

#include "cuda/device.h"

namespace turbine::cuda {
namespace {

constexpr int kCopyThreads = 256;

__device__ __forceinline__ uint8_t* chunk_at(const KvBlockView& view, int block, int layer,
                                             int kv) {
  const int64_t id = view.ids != nullptr ? view.ids[block] : block;
  return static_cast<uint8_t*>(kv != 0 ? view.v : view.k) + layer * view.layer_stride +
         id * view.block_stride;
}

// One CTA per (block, layer, K|V) chunk; 16-byte loads when everything is 16-byte aligned.
__global__ void __launch_bounds__(kCopyThreads)
    copy_kv_blocks_kernel(KvBlockView src, KvBlockView dst, int64_t chunk_bytes, bool vec16) {
  const uint8_t* s = chunk_at(src, blockIdx.x, blockIdx.y, blockIdx.z);
  uint8_t* d = chunk_at(dst, blockIdx.x, blockIdx.y, blockIdx.z);
  if (vec16) {
    const auto* s16 = reinterpret_cast<const uint4*>(s);
    auto* d16 = reinterpret_cast<uint4*>(d);
    const int64_t n = chunk_bytes / 16;
    for (int64_t i = threadIdx.x; i < n; i += kCopyThreads) d16[i] = s16[i];
  } else {
    for (int64_t i = threadIdx.x; i < chunk_bytes; i += kCopyThreads) d[i] = s[i];
  }
}

bool aligned16(const KvBlockView& v) {
  return (reinterpret_cast<uintptr_t>(v.k) % 16) == 0 &&
         (reinterpret_cast<uintptr_t>(v.v) % 16) == 0 && v.layer_stride % 16 == 0 &&
         v.block_stride % 16 == 0;
}

}  // namespace

Status copy_kv_blocks(cudaStream_t stream, const KvBlockView& src, const KvBlockView& dst,
                      int n_blocks, int n_layers, int64_t chunk_bytes) {
  if (n_blocks < 0 || n_layers <= 0 || n_layers > 65535 || chunk_bytes <= 0)
    return invalid_argument("copy_kv_blocks: bad shape");
  if (src.k == nullptr || src.v == nullptr || dst.k == nullptr || dst.v == nullptr)
    return invalid_argument("copy_kv_blocks: null pool");
  if (n_blocks == 0) return Status::ok();
  const bool vec16 = chunk_bytes % 16 == 0 && aligned16(src) && aligned16(dst);
  const dim3 grid(static_cast<unsigned>(n_blocks), static_cast<unsigned>(n_layers), 2);
  copy_kv_blocks_kernel<<<grid, kCopyThreads, 0, stream>>>(src, dst, chunk_bytes, vec16);
  return check_launch("copy_kv_blocks");
}

}  // namespace turbine::cuda
