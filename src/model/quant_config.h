// A Hugging Face checkpoint's `quantization_config` (config.json), as far as FP8 weights go:
// compressed-tensors ("float-quantized": FP8 E4M3 weights with per-tensor, per-channel or
// 128x128-block scales; inputs dynamic per token or per group, static per tensor, or not
// quantized) and quant_method "fp8" (per-tensor `weight_scale`, or `weight_scale_inv` per
// `weight_block_size` block with inputs quantized per token group). Anything else (INT4/INT8,
// group scales, output quantization, e5m2) is refused at load, naming the config key.
//
// Internal to src/model: the HF loader parses it once and attaches the scales to each linear
// layer's TensorView. Pure functions, any thread.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/loaded_model.h"
#include "model/safetensors.h"

namespace turbine::model {

// One scheme (a compressed-tensors config group, or the whole fp8 config).
struct Fp8Scheme {
  enum class WeightScale {
    kTensor,
    kChannel,
    kBlock,
    kInferred
  } weight_scale = WeightScale::kChannel;
  int64_t block_rows = 0, block_cols = 0;     // kBlock
  std::string scale_suffix = "weight_scale";  // "weight_scale_inv" (quant_method fp8, blocks)
  InputQuant::Kind input = InputQuant::Kind::kDynamicPerToken;  // kStatic: "<module>.input_scale"
  int input_group = 0;                                          // kDynamicPerGroup
  std::vector<std::string> targets;  // "Linear", module names or "re:" patterns
};

struct QuantConfig {
  enum class Method { kNone, kCompressedTensors, kFp8 } method = Method::kNone;
  std::vector<Fp8Scheme> schemes;
  std::vector<std::string> ignore;  // module names or "re:" patterns (compressed-tensors)
  // quant_method fp8's ignored_layers / modules_to_not_convert: dotted parts of module names
  // ("lm_head", "model.layers.0.mlp" ignores that MLP's projections).
  std::vector<std::string> ignore_parts;
  bool kv_cache_scales = false;  // compressed-tensors kv_cache_scheme: per-layer k/v_scale
  // The scheme for a linear module ("model.layers.0.self_attn.q_proj", "lm_head"), or null when
  // the module stays unquantized (ignored, or no scheme targets it).
  const Fp8Scheme* scheme_for(const std::string& module) const;
};

// `fname` names config.json in messages. A config without quantization_config is kNone.
Result<QuantConfig> parse_quant_config(const nlohmann::json& config, const std::string& fname);

// Finds a tensor of the checkpoint by name (null if absent); `file` receives its file's name.
using TensorLookup =
    std::function<const SafetensorsTensor*(const std::string& name, std::string& file)>;

// Gives the linear layer `module`'s weight view `w` its FP8 scales and input quantization (the
// scales converted to f32 and owned by `model`), or checks that it is not FP8 when the config
// leaves the module unquantized. Errors name the tensor or the config key.
Status attach_fp8(const QuantConfig& config, const std::string& module, const TensorLookup& find,
                  LoadedModel& model, TensorView& w);

// compressed-tensors kv_cache_scheme: the layer's `self_attn.k_scale` / `v_scale` (per tensor).
Status read_kv_scales(const QuantConfig& config, const std::string& attn_module,
                      const TensorLookup& find, LayerWeights& layer);

}  // namespace turbine::model
