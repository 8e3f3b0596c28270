// Tensor parallelism on CUDA (issue 22): one process, one rank thread and stream per GPU
// (engine::TensorParallelBackend), NCCL for the collectives (cuda/nccl_communicator.h).
#pragma once

#include <memory>

#include "common/status.h"
#include "cuda/cuda_backend.h"
#include "engine/backend.h"
#include "model/model.h"

namespace turbine::cuda {

// `tp_size` ranks on GPUs 0..tp_size-1 (as CUDA_VISIBLE_DEVICES numbers them); options apply to
// every rank (gpu_memory_utilization and kv_cache_memory_bytes per GPU; options.device is
// ignored). tp_size 1 runs the one-GPU backend through the NCCL code (a one-rank group). Fails
// at once, with a message saying what is missing, when the model cannot be split that way, when
// fewer GPUs are visible, or when NCCL cannot be loaded.
Result<std::unique_ptr<engine::Backend>> make_cuda_tp_backend(const model::Model& model,
                                                              const CudaBackendOptions& options,
                                                              int tp_size);

}  // namespace turbine::cuda
