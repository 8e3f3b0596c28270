// The model's weights on the device: uploaded once, in the backend's dtype, with Q/K/V and
// gate/up concatenated so that each is one GEMM. Called by CudaBackend::init on its thread.
#pragma once

#include <initializer_list>
#include <vector>

#include "common/status.h"
#include "cuda/device.h"
#include "model/model.h"

namespace turbine::cuda {

struct LayerDev {
  DeviceBuffer attn_norm, ffn_norm, wqkv, bqkv, q_norm, k_norm, wo, wgu, wdown;
};

struct DeviceWeights {
  DeviceBuffer embed, output_norm, lm_head;
  const void* lm_head_ptr = nullptr;  // lm_head, or embed when the embeddings are tied
  std::vector<LayerDev> layers;
};

// Uploads the row-wise concatenation of `parts` (all with the same number of columns), converted
// to `dst` (any loader dtype; a part already in `dst` is copied as is).
Result<DeviceBuffer> upload_concat(std::initializer_list<const model::TensorView*> parts,
                                   model::DType dst);

// Every tensor of `w` in `dtype`.
Result<DeviceWeights> upload_weights(const model::Weights& w, model::DType dtype);

}  // namespace turbine::cuda
