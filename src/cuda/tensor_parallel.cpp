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
  TURBINE_ASSIGN_OR_RETURN(NcclGroup made, make_nccl_group(devices));
  auto group = std::make_shared<NcclGroup>(std::move(made));
  engine::TpGroupHooks hooks{group->abort, group->reset};
  // Rank r's communicator moves to its rank thread before anything can fail, so that every
  // communicator is destroyed on its own thread, all at once (ncclCommDestroy may wait for the
  // other ranks).
  engine::RankFactory factory = [&model, options, group,
                                 tp_size](int rank) -> Result<std::unique_ptr<engine::Backend>> {
    std::shared_ptr<tp::Communicator> comm = std::move(group->comms[static_cast<size_t>(rank)]);
    TURBINE_ASSIGN_OR_RETURN(tp::ShardPlan plan,
                             tp::make_shard_plan(model.config(), rank, tp_size));
    TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<tp::RankWeights> shard,
                             tp::RankWeights::make(model, plan));
    CudaBackendOptions o = options;
    o.device = rank;
    o.shard = std::move(shard);
    o.comm = std::move(comm);
    return make_cuda_backend(model, o);
  };
  auto thread_init = [](int rank) { (void)cudaSetDevice(rank); };
  return engine::make_tensor_parallel_backend(model.config(), tp_size, std::move(factory),
                                              std::move(hooks), std::move(thread_init));
}

}  // namespace turbine::cuda
