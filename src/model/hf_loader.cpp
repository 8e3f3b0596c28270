// Hugging Face model folders: config.json + model.safetensors (or a sharded index).
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "model/loaded_model.h"
#include "model/quant_config.h"
#include "model/safetensors.h"

namespace turbine::model {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

Result<json> read_json(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return not_found(p.filename().string() + ": cannot open " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const std::exception& e) {
    return data_loss(p.filename().string() + ": invalid JSON: " + e.what());
  }
}

// Reads an optional numeric field; a present field of the wrong type is an error naming it.
template <typename T>
Status get_num(const json& j, const char* key, T& out, bool required, const std::string& fname) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return required ? not_found(fname + ": missing " + key, key) : Status::ok();
  }
  if (!it->is_number()) return data_loss(fname + ": " + key + ": expected a number", key);
  if constexpr (std::is_integral_v<T>) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
        it->get<int64_t>() > (int64_t{1} << 31) - 1) {
      return data_loss(fname + ": " + key + ": expected a non-negative integer", key);
    }
  }
  out = it->get<T>();
  return Status::ok();
}

// bos/eos ids may be an integer or a list (first one is used).
void read_token_id(const json& j, const char* key, int32_t& out) {
  auto it = j.find(key);
  if (it == j.end()) return;
  if (it->is_number_integer())
    out = it->get<int32_t>();
  else if (it->is_array() && !it->empty() && (*it)[0].is_number_integer())
    out = (*it)[0].get<int32_t>();
}

Status parse_config(const json& j, ModelConfig& c, const std::string& fname) {
  if (!j.is_object()) return data_loss(fname + ": expected a JSON object");
  auto archs = j.find("architectures");
  if (archs == j.end() || !archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
    return not_found(fname + ": missing architectures[0]", "architectures");
  }
  c.arch_name = (*archs)[0].get<std::string>();
  c.rope_layout = RopeLayout::kHalves;
  if (c.arch_name == "LlamaForCausalLM") {
    c.arch = Arch::kLlama;
  } else if (c.arch_name == "MistralForCausalLM") {
    c.arch = Arch::kLlama;
    auto sw = j.find("sliding_window");
    if (sw != j.end() && !sw->is_null()) {
      return unimplemented(
          fname + ": MistralForCausalLM with sliding_window attention is not supported",
          "sliding_window");
    }
  } else if (c.arch_name == "Qwen2ForCausalLM") {
    c.arch = Arch::kQwen2;
    c.qkv_bias = true;
    auto use_sw = j.find("use_sliding_window");
    if (use_sw != j.end() && use_sw->is_boolean() && use_sw->get<bool>()) {
      return unimplemented(fname + ": Qwen2 with use_sliding_window is not supported",
                           "use_sliding_window");
    }
  } else if (c.arch_name == "Qwen3ForCausalLM" || c.arch_name == "Qwen3Model") {
    // Qwen3Model: the bare decoder (Qwen3-Embedding's weights), used as an embedder.
    c.arch = Arch::kQwen3;
    c.qk_norm = true;
  } else {
    return unimplemented(fname + ": unsupported architecture '" + c.arch_name + "'",
                         "architectures");
  }
  TURBINE_RETURN_IF_ERROR(get_num(j, "hidden_size", c.dim, true, fname));
  TURBINE_RETURN_IF_ERROR(get_num(j, "intermediate_size", c.ffn_dim, true, fname));
  TURBINE_RETURN_IF_ERROR(get_num(j, "num_hidden_layers", c.n_layers, true, fname));
  TURBINE_RETURN_IF_ERROR(get_num(j, "num_attention_heads", c.n_heads, true, fname));
  c.n_kv_heads = c.n_heads;
  TURBINE_RETURN_IF_ERROR(get_num(j, "num_key_value_heads", c.n_kv_heads, false, fname));
  c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
  TURBINE_RETURN_IF_ERROR(get_num(j, "head_dim", c.head_dim, false, fname));
  c.norm_eps = 1e-6f;
  TURBINE_RETURN_IF_ERROR(get_num(j, "rms_norm_eps", c.norm_eps, false, fname));
  c.rope_theta = 10000.0f;
  TURBINE_RETURN_IF_ERROR(get_num(j, "rope_theta", c.rope_theta, false, fname));
  c.max_context = 2048;
  TURBINE_RETURN_IF_ERROR(get_num(j, "max_position_embeddings", c.max_context, false, fname));
  TURBINE_RETURN_IF_ERROR(get_num(j, "vocab_size", c.n_vocab, true, fname));
  c.tie_embeddings = false;
  if (auto t = j.find("tie_word_embeddings"); t != j.end() && !t->is_null()) {
    if (!t->is_boolean())
      return data_loss(fname + ": tie_word_embeddings: expected a bool", "tie_word_embeddings");
    c.tie_embeddings = t->get<bool>();
  }
  if (auto hidden_act = j.find("hidden_act"); hidden_act != j.end() && hidden_act->is_string() &&
                                              hidden_act->get<std::string>() != "silu") {
    return unimplemented(
        fname + ": hidden_act '" + hidden_act->get<std::string>() + "' is not supported",
        "hidden_act");
  }
  // transformers >= 5 writes `rope_parameters` {rope_theta, rope_type, scaling fields...} in
  // place of the top-level `rope_theta` and `rope_scaling`; older configs use those two.
  auto rs = j.find("rope_parameters");
  if (rs != j.end() && rs->is_object()) {
    TURBINE_RETURN_IF_ERROR(
        get_num(*rs, "rope_theta", c.rope_theta, false, fname + ": rope_parameters"));
  } else {
    rs = j.find("rope_scaling");
  }
  if (rs != j.end() && !rs->is_null()) {
    if (!rs->is_object())
      return data_loss(fname + ": rope_scaling: expected an object", "rope_scaling");
    std::string type;
    if (auto t = rs->find("rope_type"); t != rs->end() && t->is_string())
      type = t->get<std::string>();
    else if (auto t2 = rs->find("type"); t2 != rs->end() && t2->is_string())
      type = t2->get<std::string>();
    if (type == "llama3") {
      RopeScaling& s = c.rope_scaling;
      s.type = RopeScaling::Type::kLlama3;
      TURBINE_RETURN_IF_ERROR(get_num(*rs, "factor", s.factor, true, fname + ": rope_scaling"));
      TURBINE_RETURN_IF_ERROR(
          get_num(*rs, "low_freq_factor", s.low_freq_factor, true, fname + ": rope_scaling"));
      TURBINE_RETURN_IF_ERROR(
          get_num(*rs, "high_freq_factor", s.high_freq_factor, true, fname + ": rope_scaling"));
      TURBINE_RETURN_IF_ERROR(get_num(*rs, "original_max_position_embeddings",
                                      s.original_max_position, true, fname + ": rope_scaling"));
    } else if (type != "default") {
      return unimplemented(
          fname + ": rope_scaling type '" + type + "' is not supported (only llama3)",
          "rope_scaling");
    }
  }
  return Status::ok();
}

struct TensorSource {
  size_t file = 0;
  SafetensorsTensor tensor;
  std::string file_name;
};

Result<TensorView> to_view(const std::map<std::string, TensorSource>& all, const std::string& name,
                           bool required, const std::string& source) {
  auto it = all.find(name);
  if (it == all.end()) {
    if (required) return not_found(source + ": missing tensor " + name, name);
    return TensorView{};
  }
  const SafetensorsTensor& t = it->second.tensor;
  const std::string where = it->second.file_name + ": tensor " + name;
  TensorView v;
  if (t.dtype == "F32")
    v.dtype = DType::kF32;
  else if (t.dtype == "F16")
    v.dtype = DType::kF16;
  else if (t.dtype == "BF16")
    v.dtype = DType::kBF16;
  else if (t.dtype == "F8_E4M3")
    v.dtype = DType::kF8E4M3;  // scales: attach_fp8
  else
    return unimplemented(where + ": unsupported dtype " + t.dtype, name);
  if (t.shape.size() == 1) {
    v.rows = 1;
    v.cols = t.shape[0];
  } else if (t.shape.size() == 2) {
    v.rows = t.shape[0];
    v.cols = t.shape[1];
  } else {
    return data_loss(where + ": expected 1 or 2 dimensions", name);
  }
  v.data = t.data;
  v.size_bytes = t.size_bytes;
  v.name = name;
  return v;
}

// The vocabulary part of a folder: token ids from config.json (and generation_config.json), the
// tokenizer files' locations, the chat template. May throw nlohmann::json errors.
Status read_hf_vocab(const fs::path& dir, const json& config, VocabSpec& vocab) {
  read_token_id(config, "bos_token_id", vocab.bos_id);
  read_token_id(config, "eos_token_id", vocab.eos_id);
  read_token_id(config, "pad_token_id", vocab.pad_id);
  std::error_code ec;
  if (fs::exists(dir / "generation_config.json", ec)) {
    auto gen = read_json(dir / "generation_config.json");
    if (gen.has_value() && gen->is_object()) {
      read_token_id(*gen, "bos_token_id", vocab.bos_id);
      read_token_id(*gen, "eos_token_id", vocab.eos_id);
    }
  }
  vocab.model = "hf";
  vocab.add_space_prefix = false;
  if (fs::exists(dir / "tokenizer.json", ec)) vocab.tokenizer_json = dir / "tokenizer.json";
  if (fs::exists(dir / "tokenizer_config.json", ec)) {
    vocab.tokenizer_config = dir / "tokenizer_config.json";
    TURBINE_ASSIGN_OR_RETURN(json tc, read_json(vocab.tokenizer_config));
    if (tc.is_object()) {
      if (auto t = tc.find("chat_template"); t != tc.end()) {
        if (t->is_string()) {
          vocab.chat_template = t->get<std::string>();
        } else if (t->is_array()) {
          // A list of named templates: prefer "default".
          for (const auto& e : *t) {
            if (e.is_object() && e.contains("template") && e["template"].is_string()) {
              if (vocab.chat_template.empty() || e.value("name", "") == "default") {
                vocab.chat_template = e["template"].get<std::string>();
              }
            }
          }
        }
      }
      if (auto b = tc.find("add_bos_token"); b != tc.end() && b->is_boolean())
        vocab.add_bos = b->get<bool>();
      if (auto e = tc.find("add_eos_token"); e != tc.end() && e->is_boolean())
        vocab.add_eos = e->get<bool>();
    }
  }
  if (vocab.chat_template.empty() && fs::exists(dir / "chat_template.jinja", ec)) {
    std::ifstream in(dir / "chat_template.jinja", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    vocab.chat_template = ss.str();
  }
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<Model>> load_hf_folder(const fs::path& dir_in, MappedFile::Mode mode) {
  fs::path dir = dir_in.lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  const std::string source = dir.filename().string();
  auto model = std::make_unique<LoadedModel>();
  ModelConfig& c = model->mutable_config();
  VocabSpec& vocab = model->mutable_vocab();

  TURBINE_ASSIGN_OR_RETURN(json config, read_json(dir / "config.json"));
  QuantConfig quant;
  try {
    TURBINE_RETURN_IF_ERROR(parse_config(config, c, "config.json"));
    TURBINE_RETURN_IF_ERROR(read_hf_vocab(dir, config, vocab));
    TURBINE_ASSIGN_OR_RETURN(quant, parse_quant_config(config, "config.json"));
  } catch (const std::exception& e) {
    return data_loss(source + ": config: " + e.what());
  }

  // Which files hold the weights.
  std::vector<std::string> shard_names;
  std::map<std::string, std::string> weight_map;
  std::error_code ec;
  if (fs::exists(dir / "model.safetensors", ec)) {
    shard_names.push_back("model.safetensors");
  } else if (fs::exists(dir / "model.safetensors.index.json", ec)) {
    TURBINE_ASSIGN_OR_RETURN(json index, read_json(dir / "model.safetensors.index.json"));
    auto wm = index.is_object() ? index.find("weight_map") : index.end();
    if (wm == index.end() || !wm->is_object()) {
      return data_loss("model.safetensors.index.json: missing weight_map", "weight_map");
    }
    std::set<std::string> uniq;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string())
        return data_loss(
            "model.safetensors.index.json: weight_map." + it.key() + ": expected a file name",
            it.key());
      const std::string f = it.value().get<std::string>();
      // Shards must be plain files in this folder.
      if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..") {
        return data_loss("model.safetensors.index.json: bad shard name '" + f + "'", it.key());
      }
      weight_map[it.key()] = f;
      if (uniq.insert(f).second) shard_names.push_back(f);
    }
  } else {
    return not_found(source + ": no model.safetensors or model.safetensors.index.json");
  }

  std::map<std::string, TensorSource> all;
  for (size_t s = 0; s < shard_names.size(); ++s) {
    TURBINE_ASSIGN_OR_RETURN(MappedFile f, MappedFile::open(dir / shard_names[s], mode));
    TURBINE_ASSIGN_OR_RETURN(auto tensors, parse_safetensors(f));
    for (auto& [name, t] : tensors) {
      if (!weight_map.empty()) {
        auto it = weight_map.find(name);
        if (it == weight_map.end() || it->second != shard_names[s])
          continue;  // not this shard's per the index
      }
      all[name] = TensorSource{s, std::move(t), shard_names[s]};
    }
    model->own(std::move(f));
  }
  for (const auto& [name, file] : weight_map) {
    if (all.count(name) == 0) {
      return data_loss(file + ": tensor " + name +
                           " listed in model.safetensors.index.json but not in the shard",
                       name);
    }
  }

  Weights& w = model->mutable_weights();
  // A bare decoder (Qwen3Model, as Qwen3-Embedding ships) has no "model." prefix and no LM head.
  const bool bare = all.count("model.embed_tokens.weight") == 0 && all.count("embed_tokens.weight");
  const std::string mp = bare ? "" : "model.";
  TURBINE_ASSIGN_OR_RETURN(w.tok_embeddings,
                           to_view(all, mp + "embed_tokens.weight", true, source));
  TURBINE_ASSIGN_OR_RETURN(w.output_norm, to_view(all, mp + "norm.weight", true, source));
  if (c.tie_embeddings || (bare && all.count("lm_head.weight") == 0)) {
    w.output = w.tok_embeddings;
  } else {
    TURBINE_ASSIGN_OR_RETURN(w.output, to_view(all, "lm_head.weight", true, source));
  }
  if (c.n_layers < 0 || c.n_layers > 4096)
    return data_loss("config.json: num_hidden_layers out of range", "num_hidden_layers");
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = mp + "layers." + std::to_string(l) + ".";
    LayerWeights& L = w.layers[static_cast<size_t>(l)];
    TURBINE_ASSIGN_OR_RETURN(L.attn_norm, to_view(all, p + "input_layernorm.weight", true, source));
    TURBINE_ASSIGN_OR_RETURN(L.wq, to_view(all, p + "self_attn.q_proj.weight", true, source));
    TURBINE_ASSIGN_OR_RETURN(L.wk, to_view(all, p + "self_attn.k_proj.weight", true, source));
    TURBINE_ASSIGN_OR_RETURN(L.wv, to_view(all, p + "self_attn.v_proj.weight", true, source));
    TURBINE_ASSIGN_OR_RETURN(L.wo, to_view(all, p + "self_attn.o_proj.weight", true, source));
    TURBINE_ASSIGN_OR_RETURN(L.bq, to_view(all, p + "self_attn.q_proj.bias", c.qkv_bias, source));
    TURBINE_ASSIGN_OR_RETURN(L.bk, to_view(all, p + "self_attn.k_proj.bias", c.qkv_bias, source));
    TURBINE_ASSIGN_OR_RETURN(L.bv, to_view(all, p + "self_attn.v_proj.bias", c.qkv_bias, source));
    TURBINE_ASSIGN_OR_RETURN(L.q_norm,
                             to_view(all, p + "self_attn.q_norm.weight", c.qk_norm, source));
    TURBINE_ASSIGN_OR_RETURN(L.k_norm,
                             to_view(all, p + "self_attn.k_norm.weight", c.qk_norm, source));
    TURBINE_ASSIGN_OR_RETURN(L.ffn_norm,
                             to_view(all, p + "post_attention_layernorm.weight", true, source));
    TURBINE_ASSIGN_OR_RETURN(L.w_gate, to_view(all, p + "mlp.gate_proj.weight", true, source));
    TURBINE_ASSIGN_OR_RETURN(L.w_up, to_view(all, p + "mlp.up_proj.weight", true, source));
    TURBINE_ASSIGN_OR_RETURN(L.w_down, to_view(all, p + "mlp.down_proj.weight", true, source));
  }
  // FP8 scales (and checks that only the modules the config quantizes are FP8).
  const TensorLookup find = [&all](const std::string& name,
                                   std::string& file) -> const SafetensorsTensor* {
    auto it = all.find(name);
    if (it == all.end()) return nullptr;
    file = it->second.file_name;
    return &it->second.tensor;
  };
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = mp + "layers." + std::to_string(l) + ".";
    LayerWeights& L = w.layers[static_cast<size_t>(l)];
    const std::pair<const char*, TensorView*> linear[] = {
        {"self_attn.q_proj", &L.wq}, {"self_attn.k_proj", &L.wk},  {"self_attn.v_proj", &L.wv},
        {"self_attn.o_proj", &L.wo}, {"mlp.gate_proj", &L.w_gate}, {"mlp.up_proj", &L.w_up},
        {"mlp.down_proj", &L.w_down}};
    for (const auto& [module, view] : linear)
      TURBINE_RETURN_IF_ERROR(attach_fp8(quant, p + module, find, *model, *view));
    TURBINE_RETURN_IF_ERROR(read_kv_scales(quant, p + "self_attn", find, L));
  }
  if (w.output.data != w.tok_embeddings.data)
    TURBINE_RETURN_IF_ERROR(attach_fp8(quant, "lm_head", find, *model, w.output));
  if (w.tok_embeddings.dtype == DType::kF8E4M3)
    return unimplemented(
        source + ": tensor " + w.tok_embeddings.name + ": F8_E4M3 embeddings are not supported",
        w.tok_embeddings.name);
  TURBINE_RETURN_IF_ERROR(validate_config(c, source + "/config.json"));
  TURBINE_RETURN_IF_ERROR(validate_weights(c, w, source));
  model->set_name(source);
  model->set_path(dir);
  return std::unique_ptr<Model>(std::move(model));
}

Result<ModelInfo> load_hf_info(const fs::path& dir_in) {
  fs::path dir = dir_in.lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  const std::string source = dir.filename().string();
  ModelInfo info;
  ModelConfig c;
  TURBINE_ASSIGN_OR_RETURN(json config, read_json(dir / "config.json"));
  try {
    TURBINE_RETURN_IF_ERROR(parse_config(config, c, "config.json"));
    TURBINE_RETURN_IF_ERROR(read_hf_vocab(dir, config, info.vocab));
  } catch (const std::exception& e) {
    return data_loss(source + ": config: " + e.what());
  }
  TURBINE_RETURN_IF_ERROR(validate_config(c, source + "/config.json"));
  info.name = source;
  info.path = dir;
  info.arch_name = c.arch_name;
  info.n_vocab = c.n_vocab;
  info.max_context = c.max_context;
  return info;
}

}  // namespace turbine::model
