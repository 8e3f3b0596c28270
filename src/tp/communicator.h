// Collectives between the ranks of one tensor-parallel group (issue 22).
//
// A Communicator is one rank's handle on its group. Every rank of the group calls the same
// collectives in the same order with the same counts (the lock-step the TensorParallelBackend
// guarantees); a collective returns when this rank's part is done. Implementations: the
// in-process shared-memory group of the CPU backend (tp/shm_communicator.h) and NCCL for CUDA
// (cuda/nccl_communicator.h).
//
// Buffers are host memory for the shared-memory group and device memory for NCCL; `stream` is the
// CUDA stream (cudaStream_t) the NCCL collective is enqueued on, ignored (pass nullptr) on the
// host. Results are deterministic: all_reduce_sum adds the ranks' values in rank order, so every
// rank gets bit-identical sums, and the same inputs give the same sums run after run (NCCL gives
// identical sums on every rank for a given algorithm; see cuda/nccl_communicator.h).
//
// Thread rules: one rank's Communicator is used by one thread at a time (its rank thread).
#pragma once

#include <cstddef>

#include "common/status.h"
#include "model/model.h"

namespace turbine::tp {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // In place: buf[0, count) becomes the element-wise sum of every rank's buf. dtype: kF32, kF16
  // or kBF16 (an implementation may support fewer and says so in its error).
  virtual Status all_reduce_sum(void* buf, size_t count, model::DType dtype, void* stream) = 0;
  // recv[r * count, (r + 1) * count) = rank r's send[0, count), on every rank.
  virtual Status all_gather(const void* send, void* recv, size_t count, model::DType dtype,
                            void* stream) = 0;
  // buf[0, count) = root's buf[0, count), on every rank.
  virtual Status broadcast(void* buf, size_t count, model::DType dtype, int root, void* stream) = 0;
  // Returns once every rank has called it (host-side).
  virtual Status barrier() = 0;
};

// Bytes of one element of a collective buffer (0 for types collectives do not carry).
inline size_t element_bytes(model::DType dtype) {
  switch (dtype) {
    case model::DType::kF32: return 4;
    case model::DType::kF16:
    case model::DType::kBF16: return 2;
    case model::DType::kQ8_0:
    case model::DType::kF8E4M3: return 0;
  }
  return 0;
}

}  // namespace turbine::tp
