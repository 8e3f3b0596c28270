#include "encoder/encoder_config.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace turbine::encoder {
namespace {

using nlohmann::json;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

template <typename T>
Status get_num(const json& j, const char* key, T& out, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return required ? not_found(std::string("config.json: missing ") + key, key) : Status::ok();
  }
  if (!it->is_number())
    return invalid_argument(std::string("config.json: ") + key + ": expected a number", key);
  if constexpr (std::is_integral_v<T>) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
        it->get<int64_t>() > (int64_t{1} << 30)) {
      return invalid_argument(
          std::string("config.json: ") + key + ": expected a non-negative integer", key);
    }
  }
  out = it->get<T>();
  return Status::ok();
}

bool get_bool(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

Result<Activation> parse_activation(const json& j, const char* key, Activation fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_string())
    return invalid_argument(std::string("config.json: ") + key + ": expected a string", key);
  const std::string a = it->get<std::string>();
  if (a == "gelu") return Activation::kGelu;
  if (a == "gelu_new" || a == "gelu_pytorch_tanh" || a == "gelu_fast") return Activation::kGeluTanh;
  if (a == "relu") return Activation::kRelu;
  if (a == "silu" || a == "swish") return Activation::kSilu;
  if (a == "tanh") return Activation::kTanh;
  return unimplemented(std::string("config.json: ") + key + " '" + a + "' is not supported", key);
}

}  // namespace

const char* activation_name(Activation act) {
  switch (act) {
    case Activation::kGelu: return "gelu";
    case Activation::kGeluTanh: return "gelu_tanh";
    case Activation::kRelu: return "relu";
    case Activation::kSilu: return "silu";
    case Activation::kTanh: return "tanh";
  }
  return "?";
}

int EncoderConfig::max_tokens() const {
  return std::max(0, max_positions - position_offset);
}

Result<EncoderConfig> parse_encoder_config(const json& j) {
  if (!j.is_object()) return invalid_argument("config.json: expected a JSON object");
  EncoderConfig c;
  if (auto a = j.find("architectures");
      a != j.end() && a->is_array() && !a->empty() && (*a)[0].is_string()) {
    c.arch_name = (*a)[0].get<std::string>();
  }
  if (auto t = j.find("model_type"); t != j.end() && t->is_string())
    c.model_type = t->get<std::string>();
  const std::string& mt = c.model_type;
  if (mt == "bert") {
    c.arch = EncoderArch::kBert;
  } else if (mt == "roberta" || mt == "xlm-roberta" || mt == "camembert") {
    c.arch = EncoderArch::kRoberta;
  } else if (mt == "modernbert") {
    c.arch = EncoderArch::kModernBert;
  } else if (mt == "qwen3" || mt == "qwen2" || mt == "llama" || mt == "mistral") {
    c.arch = EncoderArch::kDecoder;
  } else {
    return unimplemented("config.json: model_type '" + mt + "' is not a supported encoder",
                         "model_type");
  }
  if (ends_with(c.arch_name, "ForSequenceClassification")) {
    c.head = HeadKind::kSequenceClassification;
  } else if (ends_with(c.arch_name, "ForTokenClassification")) {
    c.head = HeadKind::kTokenClassification;
  } else if (c.arch_name.empty() || ends_with(c.arch_name, "Model") ||
             ends_with(c.arch_name, "ForMaskedLM") || ends_with(c.arch_name, "ForCausalLM")) {
    c.head = HeadKind::kNone;
  } else {
    return unimplemented("config.json: architecture '" + c.arch_name + "' is not supported",
                         "architectures");
  }
  if (c.arch == EncoderArch::kDecoder && c.head != HeadKind::kNone) {
    return unimplemented("config.json: " + c.arch_name + ": decoder models serve embeddings only",
                         "architectures");
  }

  TURBINE_RETURN_IF_ERROR(get_num(j, "vocab_size", c.vocab_size, true));
  TURBINE_RETURN_IF_ERROR(get_num(j, "hidden_size", c.dim, true));
  TURBINE_RETURN_IF_ERROR(get_num(j, "num_hidden_layers", c.n_layers, true));
  TURBINE_RETURN_IF_ERROR(get_num(j, "num_attention_heads", c.n_heads, true));
  TURBINE_RETURN_IF_ERROR(get_num(j, "intermediate_size", c.ffn_dim, true));
  c.max_positions = 512;
  TURBINE_RETURN_IF_ERROR(get_num(j, "max_position_embeddings", c.max_positions, false));
  if (c.dim <= 0 || c.n_heads <= 0 || c.n_layers <= 0 || c.vocab_size <= 0 || c.ffn_dim <= 0 ||
      c.n_layers > 4096) {
    return invalid_argument("config.json: sizes must be positive", "hidden_size");
  }
  c.head_dim = c.dim / c.n_heads;
  TURBINE_RETURN_IF_ERROR(get_num(j, "head_dim", c.head_dim, false));
  if (c.arch != EncoderArch::kDecoder && c.head_dim * c.n_heads != c.dim) {
    return invalid_argument("config.json: hidden_size must be a multiple of num_attention_heads",
                            "num_attention_heads");
  }
  if (auto p = j.find("pad_token_id"); p != j.end() && p->is_number_integer())
    c.pad_id = p->get<int>();

  switch (c.arch) {
    case EncoderArch::kBert:
    case EncoderArch::kRoberta: {
      c.type_vocab_size = 2;
      TURBINE_RETURN_IF_ERROR(get_num(j, "type_vocab_size", c.type_vocab_size, false));
      TURBINE_RETURN_IF_ERROR(get_num(j, "layer_norm_eps", c.norm_eps, false));
      TURBINE_ASSIGN_OR_RETURN(c.act, parse_activation(j, "hidden_act", Activation::kGelu));
      if (auto pe = j.find("position_embedding_type");
          pe != j.end() && pe->is_string() && pe->get<std::string>() != "absolute") {
        return unimplemented("config.json: position_embedding_type '" + pe->get<std::string>() +
                                 "' is not supported",
                             "position_embedding_type");
      }
      if (c.arch == EncoderArch::kRoberta) {
        if (c.pad_id < 0) c.pad_id = 1;
        c.position_offset = c.pad_id + 1;
      }
      break;
    }
    case EncoderArch::kModernBert: {
      c.norm_eps = 1e-5f;
      TURBINE_RETURN_IF_ERROR(get_num(j, "norm_eps", c.norm_eps, false));
      TURBINE_ASSIGN_OR_RETURN(c.act, parse_activation(j, "hidden_activation", Activation::kGelu));
      TURBINE_ASSIGN_OR_RETURN(c.classifier_act,
                               parse_activation(j, "classifier_activation", c.act));
      c.norm_bias = get_bool(j, "norm_bias", false);
      c.attention_bias = get_bool(j, "attention_bias", false);
      c.mlp_bias = get_bool(j, "mlp_bias", false);
      c.classifier_bias = get_bool(j, "classifier_bias", false);
      if (auto cp = j.find("classifier_pooling"); cp != j.end() && cp->is_string()) {
        const std::string p = cp->get<std::string>();
        if (p != "cls" && p != "mean")
          return unimplemented("config.json: classifier_pooling '" + p + "' is not supported",
                               "classifier_pooling");
        c.mean_pool_classifier = p == "mean";
      }
      c.local_window = 128;
      TURBINE_RETURN_IF_ERROR(get_num(j, "local_attention", c.local_window, false));
      // transformers >= 5 lists layer_types; older configs give the period of global layers.
      c.layer_local.assign(static_cast<size_t>(c.n_layers), false);
      if (auto lt = j.find("layer_types"); lt != j.end() && lt->is_array()) {
        if (lt->size() != static_cast<size_t>(c.n_layers))
          return invalid_argument("config.json: layer_types: expected one per layer",
                                  "layer_types");
        for (size_t l = 0; l < lt->size(); ++l) {
          const std::string t = (*lt)[l].is_string() ? (*lt)[l].get<std::string>() : "";
          if (t != "full_attention" && t != "sliding_attention")
            return invalid_argument("config.json: layer_types: unknown '" + t + "'", "layer_types");
          c.layer_local[l] = t == "sliding_attention";
        }
      } else {
        int every = 3;
        TURBINE_RETURN_IF_ERROR(get_num(j, "global_attn_every_n_layers", every, false));
        for (int l = 0; l < c.n_layers; ++l)
          c.layer_local[static_cast<size_t>(l)] = every > 0 && l % every != 0;
      }
      TURBINE_RETURN_IF_ERROR(get_num(j, "global_rope_theta", c.global_rope_theta, false));
      TURBINE_RETURN_IF_ERROR(get_num(j, "local_rope_theta", c.local_rope_theta, false));
      if (auto rp = j.find("rope_parameters"); rp != j.end() && rp->is_object()) {
        for (const auto& [key, theta] :
             {std::pair<const char*, float*>{"full_attention", &c.global_rope_theta},
              {"sliding_attention", &c.local_rope_theta}}) {
          auto p = rp->find(key);
          if (p == rp->end() || !p->is_object()) continue;
          const std::string type = p->value("rope_type", std::string("default"));
          if (type != "default")
            return unimplemented("config.json: rope_parameters." + std::string(key) +
                                     ": rope_type '" + type + "' is not supported",
                                 "rope_parameters");
          TURBINE_RETURN_IF_ERROR(get_num(*p, "rope_theta", *theta, false));
        }
      }
      break;
    }
    case EncoderArch::kDecoder: break;
  }

  if (c.head != HeadKind::kNone) {
    int n_labels = 2;
    auto id2label = j.find("id2label");
    if (id2label != j.end() && id2label->is_object() && !id2label->empty()) {
      n_labels = static_cast<int>(id2label->size());
    }
    TURBINE_RETURN_IF_ERROR(get_num(j, "num_labels", n_labels, false));
    if (n_labels <= 0 || n_labels > 1 << 20)
      return invalid_argument("config.json: num_labels out of range", "num_labels");
    c.labels.resize(static_cast<size_t>(n_labels));
    for (int i = 0; i < n_labels; ++i)
      c.labels[static_cast<size_t>(i)] = "LABEL_" + std::to_string(i);
    if (id2label != j.end() && id2label->is_object()) {
      for (auto it = id2label->begin(); it != id2label->end(); ++it) {
        char* end = nullptr;
        const long id = std::strtol(it.key().c_str(), &end, 10);
        if (end == it.key().c_str() || *end != '\0' || id < 0 || id >= n_labels ||
            !it.value().is_string()) {
          return invalid_argument("config.json: id2label: bad entry '" + it.key() + "'",
                                  "id2label");
        }
        c.labels[static_cast<size_t>(id)] = it.value().get<std::string>();
      }
    }
  }
  return c;
}

}  // namespace turbine::encoder
