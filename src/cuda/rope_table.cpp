// Host side of RoPE: the frequency table is the CPU backend's, so both backends rotate alike.
#include <vector>

#include "cuda/kernels.h"
#include "engine/cpu_kernels.h"

namespace turbine::cuda {

Result<DeviceBuffer> upload_rope_inv_freq(int head_dim, float theta,
                                          const model::RopeScaling& scaling, cudaStream_t stream) {
  if (head_dim <= 0 || head_dim % 2 != 0) return invalid_argument("rope: bad head_dim");
  const std::vector<float> inv = engine::rope_inv_freq(head_dim, theta, scaling);
  TURBINE_ASSIGN_OR_RETURN(DeviceBuffer buf, DeviceBuffer::allocate(inv.size() * sizeof(float)));
  // Synchronous on purpose: the table is built once at model load and `inv` dies with this frame.
  TURBINE_RETURN_IF_ERROR(check(cudaMemcpyAsync(buf.data(), inv.data(), inv.size() * sizeof(float),
                                                cudaMemcpyHostToDevice, stream),
                                "rope table upload"));
  TURBINE_RETURN_IF_ERROR(check(cudaStreamSynchronize(stream), "rope table upload"));
  return buf;
}

}  // namespace turbine::cuda
