// Random-weight Hugging Face model folders for benchmarks and tests that cannot download
// weights: config.json (+ generation_config.json) and safetensors (sharded with an index when
// large), in the layout load_model() reads. Same seed, same bytes, whatever the thread count.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "model/model.h"

namespace turbine::model {

// Hyper-parameters of a published model (or "tiny", for tests).
struct ModelShape {
  std::string name;
  int n_vocab = 0, dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, ffn_dim = 0;
  int max_context = 0;
  float rope_theta = 10000.0f;
  float norm_eps = 1e-5f;
  RopeScaling rope_scaling;  // llama3 for the Llama 3.1/3.2 shapes
  bool tie_embeddings = false;
  int32_t bos_id = 1, eos_id = 2;
};

// "llama-3.1-8b", "llama-3.1-70b", "llama-3.2-1b", "qwen2.5-0.5b", "qwen3-0.6b", "tiny".
Result<ModelShape> model_shape(std::string_view name);
std::vector<std::string> model_shape_names();

struct RandomModelOptions {
  Arch arch = Arch::kLlama;  // kQwen2 adds q/k/v biases, kQwen3 q/k norms
  std::string shape = "tiny";
  DType dtype = DType::kBF16;  // kF32, kF16 or kBF16
  // kFp8: the linear layers' weights in the compressed-tensors FP8-dynamic layout (F8_E4M3
  // `*.weight` with a `*.weight_scale` [rows, 1] in `dtype` per output channel, inputs dynamic
  // per token, lm_head ignored), as llm-compressor writes it; the rest in `dtype`.
  Quantization quantization = Quantization::kNone;
  uint64_t seed = 0;
  std::filesystem::path tokenizer;  // optional tokenizer.json to copy next to the weights
  int64_t shard_bytes = int64_t{2} << 30;
  int threads = 0;  // 0: all hardware threads
};

// Writes the folder (created if missing). Returns the bytes of weights written.
Result<int64_t> write_random_model(const RandomModelOptions& options,
                                   const std::filesystem::path& out_dir);

// "llama" / "qwen2" / "qwen3".
Result<Arch> parse_arch(std::string_view name);

}  // namespace turbine::model
