#include "model/quant_config.h"

#include <cmath>
#include <cstring>
#include <regex>

#include "model/dtype.h"

namespace turbine::model {
namespace {

using nlohmann::json;

// compressed-tensors matches "re:" entries with Python's re.match (anchored at the start).
bool matches(const std::string& pattern, const std::string& module) {
  if (pattern.rfind("re:", 0) == 0) {
    try {
      return std::regex_search(module, std::regex(pattern.substr(3)),
                               std::regex_constants::match_continuous);
    } catch (const std::regex_error&) {
      return false;  // refused at parse time; never reached
    }
  }
  return pattern == module;
}

struct Keys {
  std::string fname, prefix;  // "config.json", "quantization_config.config_groups.group_0"
  Status bad(const std::string& key, const std::string& why) const {
    const std::string k = prefix + "." + key;
    return unimplemented(fname + ": " + k + ": " + why, k);
  }
  Status malformed(const std::string& key, const std::string& why) const {
    const std::string k = prefix + "." + key;
    return data_loss(fname + ": " + k + ": " + why, k);
  }
};

Result<std::vector<std::string>> string_list(const json& j, const char* key, const Keys& k) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return k.malformed(key, "expected a list of strings");
  for (const auto& e : *it) {
    if (!e.is_string()) return k.malformed(key, "expected a list of strings");
    const std::string s = e.get<std::string>();
    if (s.rfind("re:", 0) == 0) {
      try {
        std::regex re(s.substr(3));
      } catch (const std::regex_error& err) {
        return k.malformed(key, "bad pattern '" + s + "': " + err.what());
      }
    }
    out.push_back(s);
  }
  return out;
}

// The quantization args shared by weights and input_activations: 8-bit float, symmetric.
Status check_fp8_args(const json& a, const Keys& k) {
  if (!a.is_object()) return k.malformed("", "expected an object");
  if (auto t = a.find("type");
      t != a.end() && !(t->is_string() && t->get<std::string>() == "float"))
    return k.bad("type", "only \"float\" (FP8) is supported, not " + t->dump());
  if (auto b = a.find("num_bits"); b == a.end() || !b->is_number_integer() || b->get<int>() != 8)
    return k.bad("num_bits", "only 8-bit FP8 is supported" +
                                 (b == a.end() ? std::string() : ", not " + b->dump()));
  if (auto s = a.find("symmetric"); s != a.end() && s->is_boolean() && !s->get<bool>())
    return k.bad("symmetric", "asymmetric FP8 is not supported");
  return Status::ok();
}

Status parse_group(const json& g, const Keys& k, Fp8Scheme& out) {
  if (!g.is_object()) return k.malformed("", "expected an object");
  if (auto f = g.find("format");
      f != g.end() && f->is_string() && f->get<std::string>() != "float-quantized")
    return k.bad("format", "'" + f->get<std::string>() + "' is not supported (float-quantized)");
  TURBINE_ASSIGN_OR_RETURN(out.targets, string_list(g, "targets", k));
  if (out.targets.empty()) return k.malformed("targets", "missing or empty");
  auto w = g.find("weights");
  if (w == g.end() || w->is_null()) return k.bad("weights", "a group without weight quantization");
  const Keys wk{k.fname, k.prefix + ".weights"};
  TURBINE_RETURN_IF_ERROR(check_fp8_args(*w, wk));
  if (auto d = w->find("dynamic"); d != w->end() && d->is_boolean() && d->get<bool>())
    return wk.bad("dynamic", "dynamic weight quantization is not supported");
  const std::string strategy = w->value("strategy", std::string("tensor"));
  if (strategy == "tensor") {
    out.weight_scale = Fp8Scheme::WeightScale::kTensor;
  } else if (strategy == "channel") {
    out.weight_scale = Fp8Scheme::WeightScale::kChannel;
  } else if (strategy == "block") {
    auto bs = w->find("block_structure");
    if (bs == w->end() || !bs->is_array() || bs->size() != 2 || !(*bs)[0].is_number_integer() ||
        !(*bs)[1].is_number_integer() || (*bs)[0].get<int64_t>() <= 0 ||
        (*bs)[1].get<int64_t>() <= 0)
      return wk.malformed("block_structure", "expected [rows, cols] of positive integers");
    out.weight_scale = Fp8Scheme::WeightScale::kBlock;
    out.block_rows = (*bs)[0].get<int64_t>();
    out.block_cols = (*bs)[1].get<int64_t>();
  } else {
    return wk.bad("strategy", "'" + strategy +
                                  "' is not supported for FP8 weights (tensor, channel or block; "
                                  "group scales are not)");
  }
  if (auto o = g.find("output_activations"); o != g.end() && !o->is_null())
    return k.bad("output_activations", "output quantization is not supported");
  auto in = g.find("input_activations");
  if (in == g.end() || in->is_null()) {
    out.input = InputQuant::Kind::kNone;
    return Status::ok();
  }
  const Keys ik{k.fname, k.prefix + ".input_activations"};
  TURBINE_RETURN_IF_ERROR(check_fp8_args(*in, ik));
  const bool dynamic = in->value("dynamic", false);
  const std::string is = in->value("strategy", std::string("tensor"));
  if (!dynamic && is == "tensor") {
    out.input = InputQuant::Kind::kStatic;
  } else if (dynamic && (is == "token" || is == "tensor")) {
    // Per-tensor dynamic scales depend on the whole batch; per token is the finer choice.
    out.input = InputQuant::Kind::kDynamicPerToken;
  } else if (dynamic && is == "group") {
    auto gs = in->find("group_size");
    if (gs == in->end() || !gs->is_number_integer() || gs->get<int>() <= 0)
      return ik.malformed("group_size", "expected a positive integer");
    out.input = InputQuant::Kind::kDynamicPerGroup;
    out.input_group = gs->get<int>();
  } else {
    return ik.bad("strategy", "'" + is + "' with dynamic " + (dynamic ? "true" : "false") +
                                  " is not supported (dynamic token/group, or static tensor)");
  }
  return Status::ok();
}

Status parse_compressed_tensors(const json& q, const Keys& k, QuantConfig& c) {
  if (auto f = q.find("format"); f != q.end() && f->is_string() &&
                                 f->get<std::string>() != "float-quantized" &&
                                 f->get<std::string>() != "mixed-precision")
    return k.bad("format", "'" + f->get<std::string>() +
                               "' is not supported (only float-quantized FP8; INT4/INT8 formats "
                               "such as pack-quantized are not)");
  auto groups = q.find("config_groups");
  if (groups == q.end() || !groups->is_object() || groups->empty())
    return k.malformed("config_groups", "missing or empty");
  for (auto it = groups->begin(); it != groups->end(); ++it) {
    Fp8Scheme s;
    TURBINE_RETURN_IF_ERROR(
        parse_group(it.value(), Keys{k.fname, k.prefix + ".config_groups." + it.key()}, s));
    c.schemes.push_back(std::move(s));
  }
  TURBINE_ASSIGN_OR_RETURN(c.ignore, string_list(q, "ignore", k));
  if (auto kv = q.find("kv_cache_scheme"); kv != q.end() && !kv->is_null()) {
    const Keys kk{k.fname, k.prefix + ".kv_cache_scheme"};
    TURBINE_RETURN_IF_ERROR(check_fp8_args(*kv, kk));
    if (kv->value("strategy", std::string("tensor")) != "tensor")
      return kk.bad("strategy", "only per-tensor KV cache scales are supported");
    c.kv_cache_scales = true;
  }
  return Status::ok();
}

Status parse_fp8(const json& q, const Keys& k, QuantConfig& c) {
  if (auto f = q.find("fmt"); f != q.end() && f->is_string() && f->get<std::string>() != "e4m3")
    return k.bad("fmt", "'" + f->get<std::string>() + "' is not supported (e4m3)");
  Fp8Scheme s;
  s.targets = {"Linear"};
  const std::string act = q.value("activation_scheme", std::string("dynamic"));
  if (act != "dynamic" && act != "static")
    return k.bad("activation_scheme", "'" + act + "' is not supported (dynamic or static)");
  s.input = act == "static" ? InputQuant::Kind::kStatic : InputQuant::Kind::kDynamicPerToken;
  s.weight_scale = Fp8Scheme::WeightScale::kInferred;  // per tensor or per channel by shape
  if (auto b = q.find("weight_block_size"); b != q.end() && !b->is_null()) {
    if (!b->is_array() || b->size() != 2 || !(*b)[0].is_number_integer() ||
        !(*b)[1].is_number_integer() || (*b)[0].get<int64_t>() <= 0 || (*b)[1].get<int64_t>() <= 0)
      return k.malformed("weight_block_size", "expected [rows, cols] of positive integers");
    if (act == "static")
      return k.bad("activation_scheme", "static inputs with block-wise weights are not supported");
    s.weight_scale = Fp8Scheme::WeightScale::kBlock;
    s.block_rows = (*b)[0].get<int64_t>();
    s.block_cols = (*b)[1].get<int64_t>();
    s.scale_suffix = "weight_scale_inv";
    s.input = InputQuant::Kind::kDynamicPerGroup;
    s.input_group = static_cast<int>(s.block_cols);
  }
  c.schemes.push_back(std::move(s));
  for (const char* key : {"ignored_layers", "modules_to_not_convert"}) {
    TURBINE_ASSIGN_OR_RETURN(std::vector<std::string> more, string_list(q, key, k));
    c.ignore_parts.insert(c.ignore_parts.end(), more.begin(), more.end());
  }
  return Status::ok();
}

// Copies a scale tensor's values as f32; errors name it.
Result<std::vector<float>> scale_values(const SafetensorsTensor& t, const std::string& name,
                                        const std::string& file) {
  const std::string where = file + ": tensor " + name;
  size_t n = 1;
  for (int64_t d : t.shape) n *= static_cast<size_t>(d);
  std::vector<float> v(n);
  const auto* p = t.data;
  if (t.dtype == "F32" && t.size_bytes == 4 * n) {
    std::memcpy(v.data(), p, 4 * n);
  } else if ((t.dtype == "BF16" || t.dtype == "F16") && t.size_bytes == 2 * n) {
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      v[i] = t.dtype == "BF16" ? bf16_to_f32(h) : f16_to_f32(h);
    }
  } else {
    return unimplemented(where + ": scale dtype " + t.dtype + " (F32, BF16 or F16)", name);
  }
  for (float f : v) {
    if (!std::isfinite(f) || f <= 0.0f)
      return data_loss(where + ": scales must be finite and positive", name);
  }
  return v;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

const Fp8Scheme* QuantConfig::scheme_for(const std::string& module) const {
  for (const auto& p : ignore)
    if (matches(p, module)) return nullptr;
  const std::string dotted = "." + module + ".";
  for (const auto& p : ignore_parts)
    if (dotted.find("." + p + ".") != std::string::npos) return nullptr;
  for (const Fp8Scheme& s : schemes) {
    for (const auto& t : s.targets) {
      if (t == "Linear" || matches(t, module)) return &s;
    }
  }
  return nullptr;
}

Result<QuantConfig> parse_quant_config(const json& config, const std::string& fname) {
  QuantConfig c;
  auto q = config.find("quantization_config");
  if (q == config.end() || q->is_null()) return c;
  const Keys k{fname, "quantization_config"};
  if (!q->is_object()) return k.malformed("", "expected an object");
  auto m = q->find("quant_method");
  if (m == q->end() || !m->is_string()) return k.malformed("quant_method", "missing");
  const std::string method = m->get<std::string>();
  if (method == "compressed-tensors") {
    c.method = QuantConfig::Method::kCompressedTensors;
    TURBINE_RETURN_IF_ERROR(parse_compressed_tensors(*q, k, c));
  } else if (method == "fp8") {
    c.method = QuantConfig::Method::kFp8;
    TURBINE_RETURN_IF_ERROR(parse_fp8(*q, k, c));
  } else {
    return k.bad("quant_method",
                 "'" + method + "' is not supported (compressed-tensors FP8 or fp8)");
  }
  return c;
}

Status attach_fp8(const QuantConfig& config, const std::string& module, const TensorLookup& find,
                  LoadedModel& model, TensorView& w) {
  const Fp8Scheme* s = config.scheme_for(module);
  const std::string wname = w.name;
  if (s == nullptr) {
    if (w.dtype == DType::kF8E4M3)
      return data_loss("tensor " + wname + " is F8_E4M3 but quantization_config " +
                           (config.method == QuantConfig::Method::kNone
                                ? "is missing from config.json"
                                : "leaves " + module + " unquantized (ignore list)"),
                       wname);
    return Status::ok();
  }
  // The LM head is a Linear, but checkpoints (quant_method fp8 especially) leave it in 16 bits
  // without listing it, and vLLM does not quantize it unless asked: 16 bits there is fine.
  if (w.dtype != DType::kF8E4M3 && module == "lm_head") return Status::ok();
  if (w.dtype != DType::kF8E4M3)
    return data_loss("tensor " + wname + " is " + dtype_name(w.dtype) +
                         ", but quantization_config quantizes " + module +
                         " to FP8 (F8_E4M3 expected; add it to the ignore list otherwise)",
                     wname);
  const std::string sname = module + "." + s->scale_suffix;
  std::string file;
  const SafetensorsTensor* st = find(sname, file);
  if (st == nullptr)
    return not_found("missing tensor " + sname + " (the scales of " + wname + ")", sname);
  TURBINE_ASSIGN_OR_RETURN(std::vector<float> scales, scale_values(*st, sname, file));
  const int64_t rows = w.rows, cols = w.cols;
  Fp8Scales fs;
  Fp8Scheme::WeightScale kind = s->weight_scale;
  if (kind == Fp8Scheme::WeightScale::kInferred)
    kind = scales.size() == 1 ? Fp8Scheme::WeightScale::kTensor : Fp8Scheme::WeightScale::kChannel;
  std::string expected;
  bool ok = false;
  switch (kind) {
    case Fp8Scheme::WeightScale::kTensor:
      expected = "one value ([], [1] or [1, 1])";
      ok = scales.size() == 1;
      fs.block_rows = rows;
      fs.block_cols = cols;
      break;
    case Fp8Scheme::WeightScale::kChannel:
    case Fp8Scheme::WeightScale::kInferred:
      expected = "[" + std::to_string(rows) + ", 1]";
      ok = scales.size() == static_cast<size_t>(rows) && !st->shape.empty() &&
           st->shape[0] == rows &&
           (st->shape.size() == 1 || (st->shape.size() == 2 && st->shape[1] == 1));
      fs.block_rows = 1;
      fs.block_cols = cols;
      break;
    case Fp8Scheme::WeightScale::kBlock: {
      const int64_t br = (rows + s->block_rows - 1) / s->block_rows;
      const int64_t bc = (cols + s->block_cols - 1) / s->block_cols;
      expected = "[" + std::to_string(br) + ", " + std::to_string(bc) + "]";
      ok = st->shape.size() == 2 && st->shape[0] == br && st->shape[1] == bc;
      fs.block_rows = s->block_rows;
      fs.block_cols = s->block_cols;
      break;
    }
  }
  if (!ok)
    return data_loss(file + ": tensor " + sname + ": shape " + shape_str(st->shape) +
                         ", expected " + expected + " for " + wname + " [" + std::to_string(rows) +
                         ", " + std::to_string(cols) + "]",
                     sname);
  fs.data = model.own(std::move(scales));
  w.scales = fs;
  w.input_quant = InputQuant{};
  w.input_quant.kind = s->input;
  w.input_quant.group = s->input_group;
  if (s->input == InputQuant::Kind::kStatic) {
    const std::string iname = module + ".input_scale";
    const SafetensorsTensor* it = find(iname, file);
    if (it == nullptr)
      return not_found("missing tensor " + iname + " (static input quantization of " + wname + ")",
                       iname);
    TURBINE_ASSIGN_OR_RETURN(std::vector<float> v, scale_values(*it, iname, file));
    if (v.size() != 1)
      return data_loss(
          file + ": tensor " + iname + ": shape " + shape_str(it->shape) + ", expected one value",
          iname);
    w.input_quant.scale = v[0];
  }
  return Status::ok();
}

Status read_kv_scales(const QuantConfig& config, const std::string& attn_module,
                      const TensorLookup& find, LayerWeights& layer) {
  if (!config.kv_cache_scales) return Status::ok();
  for (auto [suffix, out] : {std::pair<const char*, float*>{"k_scale", &layer.k_scale},
                             std::pair<const char*, float*>{"v_scale", &layer.v_scale}}) {
    const std::string name = attn_module + "." + suffix;
    std::string file;
    const SafetensorsTensor* t = find(name, file);
    if (t == nullptr)
      return not_found("missing tensor " + name + " (quantization_config.kv_cache_scheme)", name);
    TURBINE_ASSIGN_OR_RETURN(std::vector<float> v, scale_values(*t, name, file));
    if (v.size() != 1) return data_loss(file + ": tensor " + name + ": expected one value", name);
    *out = v[0];
  }
  return Status::ok();
}

}  // namespace turbine::model
