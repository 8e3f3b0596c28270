#include "cuda/tensor_parallel.h"

#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "cuda/device.h"
#include "cuda/nccl_communicator.h"
#include "engine/tensor_parallel_backend.h"
#include "tp/nccl.h"
#include "tp/shard.h"

namespace turbine::cuda {

Result<std::unique_ptr<engine::Backend>> make_cuda_tp_backend(const model::Model& model,
                                                              const CudaBackendOptions& options,
                                                              int tp_size) {
  const std::string flag = "--tensor-parallel-size " + std::to_string(tp_size);
  if (tp_size < 1) return invalid_argument(flag + ": must be at least 1", "tensor_parallel_size");
  TURBINE_RETURN_IF_ERROR(tp::check_tensor_parallel(model.config(), tp_size));
  const int visible = device_count();
  if (visible < tp_size) {
    const char* cvd = std::getenv("CUDA_VISIBLE_DEVICES");
    return Status(StatusCode::kUnavailable,
                  flag + " needs " + std::to_string(tp_size) + " GPUs; " + std::to_string(visible) +
                      " visible" +
                      (cvd != nullptr ? std::string(" (CUDA_VISIBLE_DEVICES=") + cvd + ")" : ""),
                  "tensor_parallel_size");
  }
  if (auto nccl = tp::load_nccl(); !nccl.has_value()) return nccl.status();
  std::vector<int> devices(static_cast<size_t>(tp_size));
  std::iota(devices.begin(), devices.end(), 0);
  TURBINE_ASSIGN_OR_RETURN(NcclGroup group, make_nccl_group(devices));
  (void)options;
  // The CUDA rank backend (a CudaBackend computing its shard with this group's communicator)
  // lands after the CUDA backend's file split: until then a group is made and released.
  return unimplemented(flag + ": the CUDA rank backend is not built yet (CPU: --device cpu)",
                       "tensor_parallel_size");
}

}  // namespace turbine::cuda
