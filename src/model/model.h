// A loaded model: hyper-parameters, memory-mapped weights and the vocabulary it ships with.
//
// Loaded once at start-up and immutable afterwards; backends and tokenizers read it from any
// thread. Weight tensors point into memory-mapped files owned by the Model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turbine::model {

// kF8E4M3: float8_e4m3fn (1 sign, 4 exponent, 3 mantissa bits, bias 7, no infinities, max 448),
// as safetensors "F8_E4M3"; a weight in it carries its scales (Fp8Scales below).
enum class DType { kF32, kF16, kBF16, kQ8_0, kF8E4M3 };
const char* dtype_name(DType dtype);

// How the stored values of an FP8 weight become real ones: value(r, c) = stored(r, c) *
// data[(r / block_rows) * ceil(cols / block_cols) + c / block_cols]. Per tensor: one block of
// the whole matrix; per output channel: blocks of [1, cols]; block-wise: [128, 128]. The floats
// belong to the Model.
struct Fp8Scales {
  const float* data = nullptr;
  int64_t block_rows = 0, block_cols = 0;
  bool present() const { return data != nullptr; }
};

// How the input of a linear layer with FP8 weights is quantized to FP8 before the product (the
// checkpoint's "input_activations"): per token (row) from its absolute maximum, per group of
// `group` elements of a row (block-wise checkpoints), or with a fixed scale from the checkpoint.
// x is replaced by e4m3(clamp(x / s, ±448)) · s; kNone leaves the input as it is (weight-only).
struct InputQuant {
  enum class Kind { kNone, kDynamicPerToken, kDynamicPerGroup, kStatic } kind = Kind::kNone;
  int group = 0;       // kDynamicPerGroup
  float scale = 0.0f;  // kStatic
};

// A 2-D (or 1-D: rows == 1) weight matrix, row-major: `rows` output features, each a contiguous
// run of `cols` input features. GGUF `ne = [cols, rows]` and safetensors `[rows, cols]` both
// map here without copying. `data == nullptr` means the tensor is absent (optional biases).
struct TensorView {
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  size_t size_bytes = 0;
  std::string name;        // as stored in the file ("blk.3.attn_q.weight"), for error messages
  Fp8Scales scales;        // kF8E4M3 only
  InputQuant input_quant;  // linear layers with kF8E4M3 weights only
  bool present() const { return data != nullptr; }
};

enum class Arch { kLlama, kQwen2, kQwen3 };

// Which pairs of a head's dimensions RoPE rotates together.
enum class RopeLayout {
  kInterleaved,  // (0,1), (2,3), ...: GGUF llama tensors (llama.cpp permutes Q/K on conversion)
  kHalves,       // (i, i + d/2): Hugging Face checkpoints (GPT-NeoX style)
};

struct RopeScaling {
  enum class Type { kNone, kLlama3 } type = Type::kNone;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int original_max_position = 8192;
};

struct ModelConfig {
  Arch arch = Arch::kLlama;
  std::string arch_name;  // as written in the file: "llama", "LlamaForCausalLM", ...
  int n_vocab = 0;
  int dim = 0;  // hidden size
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;     // usually dim / n_heads; Qwen3 sets it explicitly
  int ffn_dim = 0;      // intermediate size
  int max_context = 0;  // max_position_embeddings / context_length
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeLayout rope_layout = RopeLayout::kHalves;
  RopeScaling rope_scaling;
  bool qkv_bias = false;        // Qwen2
  bool qk_norm = false;         // Qwen3: RMSNorm over each head of q and k before RoPE
  bool tie_embeddings = false;  // output projection shares tok_embeddings
};

struct LayerWeights {
  TensorView attn_norm;       // [1, dim]
  TensorView wq, wk, wv, wo;  // [n_heads*head_dim, dim], [n_kv*hd, dim] x2, [dim, n_heads*hd]
  TensorView bq, bk, bv;      // optional biases [1, out]
  TensorView q_norm, k_norm;  // optional [1, head_dim]
  TensorView ffn_norm;        // [1, dim]
  TensorView w_gate, w_up;    // [ffn, dim]
  TensorView w_down;          // [dim, ffn]
  // Scales of an FP8 KV cache from the checkpoint (compressed-tensors kv_cache_scheme: stored =
  // e4m3(k / k_scale)); 0: none given (the backend uses 1).
  float k_scale = 0.0f, v_scale = 0.0f;
};

struct Weights {
  TensorView tok_embeddings;  // [n_vocab, dim]
  TensorView output_norm;     // [1, dim]
  TensorView output;          // [n_vocab, dim]; equals tok_embeddings when tied
  std::vector<LayerWeights> layers;
};

// What a tokenizer needs to know, from whichever file carries it.
struct VocabSpec {
  // "llama" (SentencePiece scores), "gpt2" (BPE merges) for GGUF vocabularies;
  // "hf" when the vocabulary lives in a tokenizer.json next to the weights.
  std::string model;
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t>
      token_types;  // GGUF: 1 normal, 2 unknown, 3 control, 4 user, 5 unused, 6 byte
  std::vector<std::string> merges;
  std::string pre;  // GGUF tokenizer.ggml.pre: the BPE pre-tokenizer ("llama-bpe", "qwen2", ...)
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  int32_t pad_id = -1;
  bool add_bos = true;
  bool add_eos = false;
  bool add_space_prefix = true;
  std::string chat_template;               // empty: none in the file
  std::filesystem::path tokenizer_json;    // for model == "hf"
  std::filesystem::path tokenizer_config;  // for model == "hf", may be empty
};

class Model {
 public:
  virtual ~Model() = default;
  const ModelConfig& config() const { return config_; }
  const Weights& weights() const { return weights_; }
  const VocabSpec& vocab() const { return vocab_; }
  // Where the model came from (file or folder) and the name it is served under by default.
  const std::filesystem::path& path() const { return path_; }
  const std::string& name() const { return name_; }

 protected:
  ModelConfig config_;
  Weights weights_;
  VocabSpec vocab_;
  std::filesystem::path path_;
  std::string name_;
};

// Weight quantization applied at load (`--quantization`).
enum class Quantization {
  kNone,
  // FP8 E4M3 weights of every linear layer (q, k, v, o, gate, up, down) with one scale per output
  // channel (absolute maximum / 448), inputs quantized per token at run time: the
  // compressed-tensors FP8-dynamic scheme, applied to a 16-bit (or any) model. Embeddings, norms
  // and the LM head stay as they are; weights already in FP8 are kept.
  kFp8,
};

struct LoadOptions {
  // Map the weight files (pages shared with the page cache, loaded on demand) rather than read
  // them into private memory (`--no-mmap`: immune to the files changing on disk).
  bool mmap = true;
  Quantization quantization = Quantization::kNone;
};

// "none" / "fp8" (the --quantization flag).
Result<Quantization> parse_quantization(std::string_view name);

// Loads a GGUF file, a llama2.c checkpoint (.bin, see model/llama2c.h) or a Hugging Face model
// folder (config.json + *.safetensors). Errors name the file and the field: unknown
// architecture, missing tensor, wrong shape, truncated file.
Result<std::unique_ptr<Model>> load_model(const std::filesystem::path& path,
                                          const LoadOptions& options = {});

}  // namespace turbine::model
