// tp::Communicator over NCCL (loaded at run time, tp/nccl.h) for the GPUs of one process: one
// communicator per GPU, made together by ncclCommInitAll.
//
// Collectives are enqueued on the caller's stream (device buffers) and may be captured into a
// CUDA graph; nothing here synchronises the host except barrier(), which is a host-side barrier
// between the rank threads. NCCL's ring and tree all-reduces hand every rank the same reduced
// bytes (the reduction is done once and broadcast), which keeps the replicated residual stream
// bit-identical across ranks; NVLink multicast is off (load_nccl sets NCCL_NVLS_ENABLE=0).
//
// Thread rules: communicator r is used by rank thread r only, with GPU devices[r] current; it is
// destroyed there too.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "common/status.h"
#include "tp/communicator.h"

namespace turbine::cuda {

struct NcclGroup {
  std::vector<std::unique_ptr<tp::Communicator>> comms;  // comms[r]: GPU devices[r]
  // The host barrier's abort/reset (engine::TpGroupHooks). A rank stuck in a device-side
  // collective is not released by them: NCCL errors leave the group unusable.
  std::function<void()> abort;
  std::function<void()> reset;
};

// One communicator per device, ranks in the order given (one device: a one-rank group, the
// TP 1 path through the NCCL code). kUnavailable naming libnccl.so.2 when NCCL cannot be loaded.
Result<NcclGroup> make_nccl_group(std::span<const int> devices);

}  // namespace turbine::cuda
