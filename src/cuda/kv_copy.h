// Copies of whole KV blocks for disaggregated serving: between a paged KV pool and a packed
// buffer (host-staged export/import, engine::Backend::read_kv_blocks / write_kv_blocks), and
// from one pool to another (CUDA IPC: a peer process's pool mapped into this one).
//
// A KV "chunk" is one block of one layer of K (or V): block_size x kv_dim elements, contiguous.
// A KvBlockView says where chunk (block i, layer l, K or V) lives:
//   (kv ? v : k) + l * layer_stride + (ids ? ids[i] : i) * block_stride
// CudaBackend's pool: k/v = the K/V arenas, layer_stride = n_blocks x chunk, block_stride =
// chunk, ids = the block ids. The packed wire layout (engine::KvLayout: per block, per layer, K
// then V): k = base, v = base + chunk, layer_stride = 2 x chunk, block_stride = n_layers x 2 x
// chunk, ids = null.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/status.h"

namespace turbine::cuda {

struct KvBlockView {
  void* k = nullptr;
  void* v = nullptr;
  int64_t layer_stride = 0;      // bytes
  int64_t block_stride = 0;      // bytes
  const int32_t* ids = nullptr;  // device memory, n_blocks entries; null: block i is at i
};

// Enqueues the copy of n_blocks x n_layers x {K, V} chunks of chunk_bytes from src to dst on
// `stream`. Pointers may be in another device's memory (peer access) or an IPC mapping.
Status copy_kv_blocks(cudaStream_t stream, const KvBlockView& src, const KvBlockView& dst,
                      int n_blocks, int n_layers, int64_t chunk_bytes);

}  // namespace turbine::cuda
