#include "model/random_model.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "model/dtype.h"
#include "model/model_writer.h"

namespace turbine::model {
namespace {

namespace fs = std::filesystem;

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t hash_name(const std::string& s, uint64_t seed) {
  uint64_t h = splitmix64(seed ^ 0x5eedull);
  for (unsigned char c : s) h = splitmix64(h ^ c);
  return h;
}

// What a tensor is initialised to: centre + uniform noise of standard deviation `std`.
struct TensorSpec {
  std::string name;
  int64_t rows = 0, cols = 0;  // rows == 0: 1-D [cols]
  float centre = 0.0f, std = 0.02f;
  bool linear = false;  // a linear layer's weight (FP8 under Quantization::kFp8)
};

// Element i of a tensor is a pure function of (tensor key, i): threads split the work freely.
void fill(const TensorSpec& t, uint64_t key, DType dtype, uint8_t* out, int threads) {
  const int64_t n = std::max<int64_t>(t.rows, 1) * t.cols;
  const float half_width = t.std * 1.7320508f;  // uniform [-a, a) has std a / sqrt(3)
  auto work = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const uint64_t r = splitmix64(key ^ static_cast<uint64_t>(i) * 0xd1342543de82ef95ull);
      const float u = static_cast<float>(r >> 40) * (1.0f / 16777216.0f);  // [0, 1)
      const float v = t.centre + (2.0f * u - 1.0f) * half_width;
      switch (dtype) {
        case DType::kF32: std::memcpy(out + 4 * i, &v, 4); break;
        case DType::kF16: {
          const uint16_t h = f32_to_f16(v);
          std::memcpy(out + 2 * i, &h, 2);
          break;
        }
        default: {
          const uint16_t h = f32_to_bf16(v);
          std::memcpy(out + 2 * i, &h, 2);
          break;
        }
      }
    }
  };
  const int64_t per = int64_t{1} << 20;
  const int n_threads = static_cast<int>(std::min<int64_t>(threads, (n + per - 1) / per));
  if (n_threads <= 1) {
    work(0, n);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t step = (n + n_threads - 1) / n_threads;
  for (int k = 0; k < n_threads; ++k) {
    const int64_t b = k * step, e = std::min(n, b + step);
    if (b < e) pool.emplace_back(work, b, e);
  }
  for (auto& th : pool) th.join();
}

float round_bf16(float f) {
  return bf16_to_f32(f32_to_bf16(f));
}
float round_f16(float f) {
  return f16_to_f32(f32_to_f16(f));
}

// A linear weight as compressed-tensors stores it under FP8-dynamic: `<module>.weight` in
// F8_E4M3 and `<module>.weight_scale` [rows, 1] in the model's dtype (each row quantized with its
// scale as stored). The values are the 16-bit model's (same seed, same weights before rounding).
std::pair<SafetensorsEntry, SafetensorsEntry> fp8_entries(const TensorSpec& t, uint64_t key,
                                                          DType dtype, int threads) {
  const int64_t n = t.rows * t.cols;
  std::vector<uint8_t> f32(static_cast<size_t>(n) * 4);
  fill(t, key, DType::kF32, f32.data(), threads);
  SafetensorsEntry w, sc;
  w.name = t.name;
  w.dtype = "F8_E4M3";
  w.shape = {t.rows, t.cols};
  w.bytes.resize(static_cast<size_t>(n));
  std::vector<float> scales(static_cast<size_t>(t.rows));
  float (*round)(float) = dtype == DType::kBF16  ? round_bf16
                          : dtype == DType::kF16 ? round_f16
                                                 : nullptr;
  const auto* x = reinterpret_cast<const float*>(f32.data());
  const int n_threads =
      static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(1, t.rows / 64)));
  std::vector<std::thread> pool;
  const int64_t step = (t.rows + n_threads - 1) / n_threads;
  for (int k = 0; k < n_threads; ++k) {
    const int64_t b = k * step, e = std::min(t.rows, b + step);
    if (b < e)
      pool.emplace_back([&, b, e] {
        quantize_fp8_per_channel(x + b * t.cols, e - b, t.cols, w.bytes.data() + b * t.cols,
                                 scales.data() + b, round);
      });
  }
  for (auto& th : pool) th.join();
  const std::string suffix = ".weight";
  sc.name = t.name.substr(0, t.name.size() - suffix.size()) + ".weight_scale";
  sc.dtype = dtype == DType::kF32 ? "F32" : dtype == DType::kF16 ? "F16" : "BF16";
  sc.shape = {t.rows, 1};
  const size_t eb = dtype == DType::kF32 ? 4 : 2;
  sc.bytes.resize(static_cast<size_t>(t.rows) * eb);
  for (int64_t r = 0; r < t.rows; ++r) {
    const float v = scales[static_cast<size_t>(r)];
    if (eb == 4) {
      std::memcpy(sc.bytes.data() + 4 * r, &v, 4);
    } else {
      const uint16_t h = dtype == DType::kF16 ? f32_to_f16(v) : f32_to_bf16(v);
      std::memcpy(sc.bytes.data() + 2 * r, &h, 2);
    }
  }
  return {std::move(w), std::move(sc)};
}

const char* st_dtype(DType d) {
  return d == DType::kF32 ? "F32" : d == DType::kF16 ? "F16" : "BF16";
}

const char* torch_dtype(DType d) {
  return d == DType::kF32 ? "float32" : d == DType::kF16 ? "float16" : "bfloat16";
}

std::vector<TensorSpec> tensor_specs(const ModelShape& s, Arch arch) {
  std::vector<TensorSpec> t;
  const int64_t q = int64_t{s.n_heads} * s.head_dim, kv = int64_t{s.n_kv_heads} * s.head_dim;
  t.push_back({"model.embed_tokens.weight", s.n_vocab, s.dim, 0.0f, 0.02f});
  for (int l = 0; l < s.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back({p + "input_layernorm.weight", 0, s.dim, 1.0f, 0.05f});
    t.push_back({p + "self_attn.q_proj.weight", q, s.dim, 0.0f, 0.02f, true});
    t.push_back({p + "self_attn.k_proj.weight", kv, s.dim, 0.0f, 0.02f, true});
    t.push_back({p + "self_attn.v_proj.weight", kv, s.dim, 0.0f, 0.02f, true});
    if (arch == Arch::kQwen2) {
      t.push_back({p + "self_attn.q_proj.bias", 0, q, 0.0f, 0.02f});
      t.push_back({p + "self_attn.k_proj.bias", 0, kv, 0.0f, 0.02f});
      t.push_back({p + "self_attn.v_proj.bias", 0, kv, 0.0f, 0.02f});
    }
    if (arch == Arch::kQwen3) {
      t.push_back({p + "self_attn.q_norm.weight", 0, s.head_dim, 1.0f, 0.05f});
      t.push_back({p + "self_attn.k_norm.weight", 0, s.head_dim, 1.0f, 0.05f});
    }
    t.push_back({p + "self_attn.o_proj.weight", s.dim, q, 0.0f, 0.02f, true});
    t.push_back({p + "post_attention_layernorm.weight", 0, s.dim, 1.0f, 0.05f});
    t.push_back({p + "mlp.gate_proj.weight", s.ffn_dim, s.dim, 0.0f, 0.02f, true});
    t.push_back({p + "mlp.up_proj.weight", s.ffn_dim, s.dim, 0.0f, 0.02f, true});
    t.push_back({p + "mlp.down_proj.weight", s.dim, s.ffn_dim, 0.0f, 0.02f, true});
  }
  t.push_back({"model.norm.weight", 0, s.dim, 1.0f, 0.05f});
  if (!s.tie_embeddings) t.push_back({"lm_head.weight", s.n_vocab, s.dim, 0.0f, 0.02f});
  return t;
}

// compressed-tensors' config for FP8 weights per channel and inputs per token (llm-compressor's
// FP8_DYNAMIC preset), lm_head left in 16 bits.
nlohmann::json fp8_dynamic_config() {
  const nlohmann::json weights = {
      {"num_bits", 8},        {"type", "float"},
      {"symmetric", true},    {"strategy", "channel"},
      {"dynamic", false},     {"group_size", nullptr},
      {"actorder", nullptr},  {"block_structure", nullptr},
      {"observer", "minmax"}, {"observer_kwargs", nlohmann::json::object()}};
  const nlohmann::json inputs = {
      {"num_bits", 8},       {"type", "float"},
      {"symmetric", true},   {"strategy", "token"},
      {"dynamic", true},     {"group_size", nullptr},
      {"actorder", nullptr}, {"block_structure", nullptr},
      {"observer", nullptr}, {"observer_kwargs", nlohmann::json::object()}};
  return {{"quant_method", "compressed-tensors"},
          {"format", "float-quantized"},
          {"quantization_status", "compressed"},
          {"config_groups",
           {{"group_0",
             {{"targets", {"Linear"}},
              {"weights", weights},
              {"input_activations", inputs},
              {"output_activations", nullptr}}}}},
          {"ignore", {"lm_head"}},
          {"kv_cache_scheme", nullptr}};
}

nlohmann::json config_json(const ModelShape& s, Arch arch, DType dtype) {
  nlohmann::json j;
  const char* archs[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"};
  const char* types[] = {"llama", "qwen2", "qwen3"};
  j["architectures"] = {archs[static_cast<int>(arch)]};
  j["model_type"] = types[static_cast<int>(arch)];
  j["vocab_size"] = s.n_vocab;
  j["hidden_size"] = s.dim;
  j["intermediate_size"] = s.ffn_dim;
  j["num_hidden_layers"] = s.n_layers;
  j["num_attention_heads"] = s.n_heads;
  j["num_key_value_heads"] = s.n_kv_heads;
  j["head_dim"] = s.head_dim;
  j["max_position_embeddings"] = s.max_context;
  j["rms_norm_eps"] = s.norm_eps;
  j["rope_theta"] = s.rope_theta;
  if (s.rope_scaling.type == RopeScaling::Type::kLlama3) {
    j["rope_scaling"] = {
        {"rope_type", "llama3"},
        {"factor", s.rope_scaling.factor},
        {"low_freq_factor", s.rope_scaling.low_freq_factor},
        {"high_freq_factor", s.rope_scaling.high_freq_factor},
        {"original_max_position_embeddings", s.rope_scaling.original_max_position}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["tie_word_embeddings"] = s.tie_embeddings;
  j["hidden_act"] = "silu";
  j["attention_bias"] = arch == Arch::kQwen2;
  j["bos_token_id"] = s.bos_id;
  j["eos_token_id"] = s.eos_id;
  j["torch_dtype"] = torch_dtype(dtype);
  return j;
}

Status write_text(const fs::path& p, const std::string& text) {
  return write_file(p, text.data(), text.size());
}

}  // namespace

std::vector<std::string> model_shape_names() {
  return {"llama-3.1-8b", "llama-3.1-70b", "llama-3.2-1b", "qwen2.5-0.5b", "qwen3-0.6b", "tiny"};
}

Result<ModelShape> model_shape(std::string_view name) {
  ModelShape s;
  s.name = std::string(name);
  RopeScaling llama3;
  llama3.type = RopeScaling::Type::kLlama3;
  llama3.factor = 8.0f;
  llama3.low_freq_factor = 1.0f;
  llama3.high_freq_factor = 4.0f;
  llama3.original_max_position = 8192;
  if (name == "llama-3.1-8b") {
    s.n_vocab = 128256, s.dim = 4096, s.n_layers = 32, s.n_heads = 32, s.n_kv_heads = 8;
    s.head_dim = 128, s.ffn_dim = 14336, s.max_context = 131072, s.rope_theta = 500000.0f;
    s.rope_scaling = llama3;
    s.bos_id = 128000, s.eos_id = 128001;
  } else if (name == "llama-3.1-70b") {
    s.n_vocab = 128256, s.dim = 8192, s.n_layers = 80, s.n_heads = 64, s.n_kv_heads = 8;
    s.head_dim = 128, s.ffn_dim = 28672, s.max_context = 131072, s.rope_theta = 500000.0f;
    s.rope_scaling = llama3;
    s.bos_id = 128000, s.eos_id = 128001;
  } else if (name == "llama-3.2-1b") {
    s.n_vocab = 128256, s.dim = 2048, s.n_layers = 16, s.n_heads = 32, s.n_kv_heads = 8;
    s.head_dim = 64, s.ffn_dim = 8192, s.max_context = 131072, s.rope_theta = 500000.0f;
    s.rope_scaling = llama3;
    s.rope_scaling.factor = 32.0f;
    s.tie_embeddings = true;
    s.bos_id = 128000, s.eos_id = 128001;
  } else if (name == "qwen2.5-0.5b") {
    s.n_vocab = 151936, s.dim = 896, s.n_layers = 24, s.n_heads = 14, s.n_kv_heads = 2;
    s.head_dim = 64, s.ffn_dim = 4864, s.max_context = 32768, s.rope_theta = 1000000.0f;
    s.norm_eps = 1e-6f, s.tie_embeddings = true;
    s.bos_id = 151643, s.eos_id = 151645;
  } else if (name == "qwen3-0.6b") {
    s.n_vocab = 151936, s.dim = 1024, s.n_layers = 28, s.n_heads = 16, s.n_kv_heads = 8;
    s.head_dim = 128, s.ffn_dim = 3072, s.max_context = 40960, s.rope_theta = 1000000.0f;
    s.norm_eps = 1e-6f, s.tie_embeddings = true;
    s.bos_id = 151643, s.eos_id = 151645;
  } else if (name == "tiny") {
    s.n_vocab = 512, s.dim = 256, s.n_layers = 2, s.n_heads = 4, s.n_kv_heads = 2;
    s.head_dim = 64, s.ffn_dim = 512, s.max_context = 2048;
  } else {
    std::string known;
    for (const auto& n : model_shape_names()) known += (known.empty() ? "" : ", ") + n;
    return invalid_argument(
        "unknown model shape '" + std::string(name) + "' (known: " + known + ")", "shape");
  }
  return s;
}

Result<Arch> parse_arch(std::string_view name) {
  if (name == "llama") return Arch::kLlama;
  if (name == "qwen2") return Arch::kQwen2;
  if (name == "qwen3") return Arch::kQwen3;
  return invalid_argument(
      "unknown architecture '" + std::string(name) + "' (llama, qwen2 or qwen3)", "arch");
}

Result<int64_t> write_random_model(const RandomModelOptions& o, const fs::path& dir) {
  TURBINE_ASSIGN_OR_RETURN(ModelShape s, model_shape(o.shape));
  if (o.dtype != DType::kF32 && o.dtype != DType::kF16 && o.dtype != DType::kBF16)
    return invalid_argument("random model: dtype must be f32, f16 or bf16", "dtype");
  if (o.shard_bytes <= 0) return invalid_argument("random model: shard_bytes must be > 0");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return not_found("cannot create " + dir.string() + ": " + ec.message());
  const int threads = o.threads > 0
                          ? o.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const size_t eb = o.dtype == DType::kF32 ? 4 : 2;
  const bool fp8 = o.quantization == Quantization::kFp8;
  // A linear weight under kFp8: 1 byte per element and a scale per row.
  auto tensor_bytes = [&](const TensorSpec& t) {
    const int64_t n = std::max<int64_t>(t.rows, 1) * t.cols;
    return fp8 && t.linear ? n + t.rows * static_cast<int64_t>(eb) : n * static_cast<int64_t>(eb);
  };

  // Shards in tensor order, each at most shard_bytes (a larger tensor gets a shard of its own).
  const std::vector<TensorSpec> specs = tensor_specs(s, o.arch);
  std::vector<std::vector<size_t>> shards(1);
  int64_t in_shard = 0, total = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const int64_t bytes = tensor_bytes(specs[i]);
    if (!shards.back().empty() && in_shard + bytes > o.shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(i);
    in_shard += bytes;
    total += bytes;
  }
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t k = 0; k < shards.size(); ++k) {
    std::string file = "model.safetensors";
    if (shards.size() > 1) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k + 1, shards.size());
      file = name;
    }
    std::vector<SafetensorsEntry> entries;
    for (size_t i : shards[k]) {
      const TensorSpec& t = specs[i];
      if (fp8 && t.linear) {
        auto [w, scale] = fp8_entries(t, hash_name(t.name, o.seed), o.dtype, threads);
        weight_map[w.name] = file;
        weight_map[scale.name] = file;
        entries.push_back(std::move(w));
        entries.push_back(std::move(scale));
        continue;
      }
      SafetensorsEntry e;
      e.name = t.name;
      e.dtype = st_dtype(o.dtype);
      e.shape = t.rows > 0 ? std::vector<int64_t>{t.rows, t.cols} : std::vector<int64_t>{t.cols};
      e.bytes.resize(static_cast<size_t>(std::max<int64_t>(t.rows, 1) * t.cols) * eb);
      fill(t, hash_name(t.name, o.seed), o.dtype, e.bytes.data(), threads);
      weight_map[t.name] = file;
      entries.push_back(std::move(e));
    }
    TURBINE_RETURN_IF_ERROR(write_safetensors(dir / file, entries));
  }
  if (shards.size() > 1) {
    nlohmann::json index;
    index["metadata"] = {{"total_size", total}};
    index["weight_map"] = weight_map;
    TURBINE_RETURN_IF_ERROR(write_text(dir / "model.safetensors.index.json", index.dump(2)));
  } else {
    fs::remove(dir / "model.safetensors.index.json", ec);
  }
  nlohmann::json config = config_json(s, o.arch, o.dtype);
  if (fp8) config["quantization_config"] = fp8_dynamic_config();
  TURBINE_RETURN_IF_ERROR(write_text(dir / "config.json", config.dump(2)));
  nlohmann::json gen = {{"bos_token_id", s.bos_id}, {"eos_token_id", s.eos_id}};
  TURBINE_RETURN_IF_ERROR(write_text(dir / "generation_config.json", gen.dump(2)));
  if (!o.tokenizer.empty()) {
    fs::copy_file(o.tokenizer, dir / "tokenizer.json", fs::copy_options::overwrite_existing, ec);
    if (ec)
      return not_found("cannot copy tokenizer " + o.tokenizer.string() + ": " + ec.message(),
                       "tokenizer");
  }
  return total;
}

}  // namespace turbine::model
