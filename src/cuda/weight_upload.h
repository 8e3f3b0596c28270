// The model's weights on the device: uploaded once, in the backend's dtype, with Q/K/V and
// gate/up concatenated so that each is one GEMM. Called by CudaBackend::init on its thread.
// FP8 checkpoints (issue 28): a projection group (Q|K|V, O, gate|up, down) whose parts are all
// E4M3 with per-tensor or per-channel scales and one input scheme (per token, or one static
// scale) stays E4M3 on the device (Fp8Weight) when `fp8` is on; any other group (block-wise
// 128x128 scales, per-group input quantization, mixed schemes, k % 16 != 0) is dequantized to
// `dtype` at upload with its scales, as before.
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "common/status.h"
#include "cuda/device.h"
#include "model/model.h"

namespace turbine::cuda {

// A projection kept in E4M3: w [n][k] bytes, one f32 scale per output row (per-tensor scales
// expanded), and its input's quantization.
struct Fp8Weight {
  DeviceBuffer w, scales;
  float input_scale = 0.0f;  // > 0: the checkpoint's static input scale; 0: dynamic per token
  bool on() const { return w.data() != nullptr; }
};

struct LayerDev {
  // wqkv / wo / wgu / wdown are empty where the FP8 counterpart is on.
  DeviceBuffer attn_norm, ffn_norm, wqkv, bqkv, q_norm, k_norm, wo, wgu, wdown;
  Fp8Weight qkv8, o8, gu8, down8;
};

struct DeviceWeights {
  DeviceBuffer embed, output_norm, lm_head;
  const void* lm_head_ptr = nullptr;  // lm_head, or embed when the embeddings are tied
  std::vector<LayerDev> layers;
  int fp8_groups = 0;        // projection groups kept in E4M3
  int fp8_dequantized = 0;   // FP8 groups converted to dtype (fp8 off, or not eligible)
  std::string fp8_fallback;  // why, for the first such group
};

// Empty when the FP8 parts can stay E4M3 on the device as one group; else the reason.
std::string fp8_ineligible(std::initializer_list<const model::TensorView*> parts);

// Uploads the row-wise concatenation of `parts` (all with the same number of columns), converted
// to `dst` (any loader dtype; a part already in `dst` is copied as is).
Result<DeviceBuffer> upload_concat(std::initializer_list<const model::TensorView*> parts,
                                   model::DType dst);

// Every tensor of `w` in `dtype`; with `fp8`, eligible FP8 projection groups in E4M3.
Result<DeviceWeights> upload_weights(const model::Weights& w, model::DType dtype, bool fp8 = false);

}  // namespace turbine::cuda
