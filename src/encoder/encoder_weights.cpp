#include "encoder/encoder_weights.h"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "model/safetensors.h"

namespace turbine::encoder {
namespace {

namespace fs = std::filesystem;
using model::DType;
using model::TensorView;
using nlohmann::json;

class TensorIndex {
 public:
  std::map<std::string, model::SafetensorsTensor> tensors;
  std::string prefix;

  bool has(const std::string& name) const { return tensors.count(prefix + name) != 0; }

  // `name` without the prefix. `rows`/`cols` < 0: not checked.
  Result<TensorView> get(const std::string& name, int64_t rows, int64_t cols, bool required) const {
    auto it = tensors.find(prefix + name);
    if (it == tensors.end()) {
      if (required) return not_found("missing tensor " + prefix + name, prefix + name);
      return TensorView{};
    }
    const model::SafetensorsTensor& t = it->second;
    TensorView v;
    if (t.dtype == "F32") {
      v.dtype = DType::kF32;
    } else if (t.dtype == "F16") {
      v.dtype = DType::kF16;
    } else if (t.dtype == "BF16") {
      v.dtype = DType::kBF16;
    } else {
      return unimplemented("tensor " + it->first + ": unsupported dtype " + t.dtype, it->first);
    }
    if (t.shape.size() == 1) {
      v.rows = 1;
      v.cols = t.shape[0];
    } else if (t.shape.size() == 2) {
      v.rows = t.shape[0];
      v.cols = t.shape[1];
    } else {
      return invalid_argument("tensor " + it->first + ": expected 1 or 2 dimensions", it->first);
    }
    if ((rows >= 0 && v.rows != rows) || (cols >= 0 && v.cols != cols)) {
      return invalid_argument("tensor " + it->first + ": shape [" + std::to_string(v.rows) + ", " +
                                  std::to_string(v.cols) + "], expected [" + std::to_string(rows) +
                                  ", " + std::to_string(cols) + "]",
                              it->first);
    }
    v.data = t.data;
    v.size_bytes = t.size_bytes;
    v.name = it->first;
    return v;
  }
};

size_t element_bytes(DType d) {
  return d == DType::kF32 ? 4 : 2;
}

// Rows [r0, r1) of `t` as a view into the same memory.
TensorView row_range(const TensorView& t, int64_t r0, int64_t r1) {
  TensorView v = t;
  const size_t row_bytes = static_cast<size_t>(t.cols) * element_bytes(t.dtype);
  v.data = static_cast<const uint8_t*>(t.data) + static_cast<size_t>(r0) * row_bytes;
  v.rows = r1 - r0;
  v.size_bytes = static_cast<size_t>(r1 - r0) * row_bytes;
  v.name = t.name + "[" + std::to_string(r0) + ":" + std::to_string(r1) + "]";
  return v;
}

Result<json> read_json(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return not_found(p.filename().string() + ": cannot open " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) return invalid_argument(p.filename().string() + ": invalid JSON");
  return j;
}

Result<Linear> linear(const TensorIndex& ix, const std::string& name, int64_t out, int64_t in,
                      bool bias) {
  Linear l;
  TURBINE_ASSIGN_OR_RETURN(l.w, ix.get(name + ".weight", out, in, true));
  TURBINE_ASSIGN_OR_RETURN(l.b, ix.get(name + ".bias", 1, out, bias));
  return l;
}

Result<Norm> norm(const TensorIndex& ix, const std::string& name, int64_t dim, bool bias) {
  Norm n;
  TURBINE_ASSIGN_OR_RETURN(n.w, ix.get(name + ".weight", 1, dim, true));
  TURBINE_ASSIGN_OR_RETURN(n.b, ix.get(name + ".bias", 1, dim, bias));
  return n;
}

}  // namespace

Result<std::unique_ptr<EncoderWeightFiles>> EncoderWeightFiles::load(const fs::path& dir,
                                                                     const EncoderConfig& c) {
  auto out = std::unique_ptr<EncoderWeightFiles>(new EncoderWeightFiles());
  std::vector<std::string> shards;
  std::error_code ec;
  if (fs::exists(dir / "model.safetensors", ec)) {
    shards.push_back("model.safetensors");
  } else if (fs::exists(dir / "model.safetensors.index.json", ec)) {
    TURBINE_ASSIGN_OR_RETURN(json index, read_json(dir / "model.safetensors.index.json"));
    auto wm = index.is_object() ? index.find("weight_map") : index.end();
    if (wm == index.end() || !wm->is_object())
      return invalid_argument("model.safetensors.index.json: missing weight_map", "weight_map");
    std::set<std::string> seen;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string()) continue;
      const std::string f = it.value().get<std::string>();
      if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
        return invalid_argument("model.safetensors.index.json: bad shard name '" + f + "'",
                                it.key());
      if (seen.insert(f).second) shards.push_back(f);
    }
  } else {
    return not_found(dir.string() + ": no model.safetensors or model.safetensors.index.json");
  }
  TensorIndex ix;
  for (const std::string& s : shards) {
    TURBINE_ASSIGN_OR_RETURN(model::MappedFile f, model::MappedFile::open(dir / s));
    TURBINE_ASSIGN_OR_RETURN(auto tensors, model::parse_safetensors(f));
    for (auto& [name, t] : tensors) ix.tensors[name] = t;
    out->files_.push_back(std::move(f));
  }

  // The base model's prefix: whatever precedes the embedding table's name.
  const std::string emb_name = c.arch == EncoderArch::kModernBert
                                   ? "embeddings.tok_embeddings.weight"
                                   : "embeddings.word_embeddings.weight";
  bool found = false;
  for (const char* p : {"", "bert.", "roberta.", "model.", "xlm-roberta.", "camembert."}) {
    if (ix.tensors.count(p + emb_name) != 0) {
      ix.prefix = p;
      found = true;
      break;
    }
  }
  if (!found) return not_found("missing tensor " + emb_name, emb_name);

  EncoderWeights& w = out->weights_;
  const int64_t d = c.dim, f = c.ffn_dim;
  TURBINE_ASSIGN_OR_RETURN(w.word_emb, ix.get(emb_name, c.vocab_size, d, true));
  w.layers.resize(static_cast<size_t>(c.n_layers));
  if (c.arch == EncoderArch::kModernBert) {
    TURBINE_ASSIGN_OR_RETURN(w.emb_norm, norm(ix, "embeddings.norm", d, c.norm_bias));
    TURBINE_ASSIGN_OR_RETURN(w.final_norm, norm(ix, "final_norm", d, c.norm_bias));
    for (int l = 0; l < c.n_layers; ++l) {
      const std::string p = "layers." + std::to_string(l) + ".";
      EncoderLayer& L = w.layers[static_cast<size_t>(l)];
      TURBINE_ASSIGN_OR_RETURN(Linear qkv, linear(ix, p + "attn.Wqkv", 3 * d, d, c.attention_bias));
      L.q = {row_range(qkv.w, 0, d), qkv.b.present() ? row_range(qkv.b, 0, 1) : TensorView{}};
      L.k = {row_range(qkv.w, d, 2 * d), TensorView{}};
      L.v = {row_range(qkv.w, 2 * d, 3 * d), TensorView{}};
      if (qkv.b.present()) {
        // A [1, 3d] bias: split by columns into three [1, d] views.
        for (int part = 0; part < 3; ++part) {
          TensorView b = qkv.b;
          b.cols = d;
          b.data = static_cast<const uint8_t*>(qkv.b.data) +
                   static_cast<size_t>(part * d) * element_bytes(b.dtype);
          b.size_bytes = static_cast<size_t>(d) * element_bytes(b.dtype);
          (part == 0 ? L.q.b : part == 1 ? L.k.b : L.v.b) = b;
        }
      }
      TURBINE_ASSIGN_OR_RETURN(L.o, linear(ix, p + "attn.Wo", d, d, c.attention_bias));
      if (l > 0 || ix.has(p + "attn_norm.weight")) {
        TURBINE_ASSIGN_OR_RETURN(L.attn_norm, norm(ix, p + "attn_norm", d, c.norm_bias));
      }
      TURBINE_ASSIGN_OR_RETURN(Linear wi, linear(ix, p + "mlp.Wi", 2 * f, d, c.mlp_bias));
      L.up = {row_range(wi.w, 0, f), TensorView{}};
      L.gate = {row_range(wi.w, f, 2 * f), TensorView{}};
      if (wi.b.present()) {
        for (int part = 0; part < 2; ++part) {
          TensorView b = wi.b;
          b.cols = f;
          b.data = static_cast<const uint8_t*>(wi.b.data) +
                   static_cast<size_t>(part * f) * element_bytes(b.dtype);
          b.size_bytes = static_cast<size_t>(f) * element_bytes(b.dtype);
          (part == 0 ? L.up.b : L.gate.b) = b;
        }
      }
      TURBINE_ASSIGN_OR_RETURN(L.down, linear(ix, p + "mlp.Wo", d, f, c.mlp_bias));
      TURBINE_ASSIGN_OR_RETURN(L.ffn_norm, norm(ix, p + "mlp_norm", d, c.norm_bias));
    }
  } else {
    TURBINE_ASSIGN_OR_RETURN(
        w.pos_emb, ix.get("embeddings.position_embeddings.weight", c.max_positions, d, true));
    TURBINE_ASSIGN_OR_RETURN(w.type_emb, ix.get("embeddings.token_type_embeddings.weight",
                                                c.type_vocab_size, d, c.type_vocab_size > 0));
    TURBINE_ASSIGN_OR_RETURN(w.emb_norm, norm(ix, "embeddings.LayerNorm", d, true));
    for (int l = 0; l < c.n_layers; ++l) {
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      EncoderLayer& L = w.layers[static_cast<size_t>(l)];
      TURBINE_ASSIGN_OR_RETURN(L.q, linear(ix, p + "attention.self.query", d, d, true));
      TURBINE_ASSIGN_OR_RETURN(L.k, linear(ix, p + "attention.self.key", d, d, true));
      TURBINE_ASSIGN_OR_RETURN(L.v, linear(ix, p + "attention.self.value", d, d, true));
      TURBINE_ASSIGN_OR_RETURN(L.o, linear(ix, p + "attention.output.dense", d, d, true));
      TURBINE_ASSIGN_OR_RETURN(L.attn_norm, norm(ix, p + "attention.output.LayerNorm", d, true));
      TURBINE_ASSIGN_OR_RETURN(L.up, linear(ix, p + "intermediate.dense", f, d, true));
      TURBINE_ASSIGN_OR_RETURN(L.down, linear(ix, p + "output.dense", d, f, true));
      TURBINE_ASSIGN_OR_RETURN(L.ffn_norm, norm(ix, p + "output.LayerNorm", d, true));
    }
  }

  // Heads: the task model's own names (no base prefix).
  TensorIndex heads;
  heads.tensors = std::move(ix.tensors);
  const auto n_labels = static_cast<int64_t>(c.labels.size());
  if (c.arch == EncoderArch::kBert) {
    // BertModel keeps the pooler under the base prefix.
    heads.prefix = ix.prefix;
    TURBINE_ASSIGN_OR_RETURN(w.pooler, [&]() -> Result<Linear> {
      if (!heads.has("pooler.dense.weight")) {
        if (c.head == HeadKind::kSequenceClassification)
          return not_found("missing tensor " + ix.prefix + "pooler.dense.weight");
        return Linear{};
      }
      return linear(heads, "pooler.dense", d, d, true);
    }());
    heads.prefix.clear();
  }
  if (c.head != HeadKind::kNone) {
    if (c.arch == EncoderArch::kRoberta && c.head == HeadKind::kSequenceClassification) {
      TURBINE_ASSIGN_OR_RETURN(w.head_dense, linear(heads, "classifier.dense", d, d, true));
      TURBINE_ASSIGN_OR_RETURN(w.classifier,
                               linear(heads, "classifier.out_proj", n_labels, d, true));
    } else {
      if (c.arch == EncoderArch::kModernBert) {
        TURBINE_ASSIGN_OR_RETURN(w.head_dense,
                                 linear(heads, "head.dense", d, d, c.classifier_bias));
        TURBINE_ASSIGN_OR_RETURN(w.head_norm, norm(heads, "head.norm", d, c.norm_bias));
      }
      TURBINE_ASSIGN_OR_RETURN(w.classifier, linear(heads, "classifier", n_labels, d, true));
    }
  }
  return out;
}

}  // namespace turbine::encoder
