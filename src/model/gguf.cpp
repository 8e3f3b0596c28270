#include "model/gguf.h"

#include <cstring>
#include <limits>

#include "model/dtype.h"
#include "model/loaded_model.h"

namespace turbine::model {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint64_t kMaxStringBytes = uint64_t{1} << 30;
constexpr uint32_t kMaxDims = 4;
constexpr int kMaxArrayDepth = 4;

// Bounds-checked little-endian cursor over the mapping.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  template <typename T>
  bool read(T& out) {
    if (remaining() < sizeof(T)) return false;
    std::memcpy(&out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool read_string(std::string& out) {
    uint64_t n = 0;
    if (!read(n) || n > remaining() || n > kMaxStringBytes) return false;
    out.assign(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return true;
  }
  bool skip(uint64_t n) {
    if (n > remaining()) return false;
    pos_ += static_cast<size_t>(n);
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool: return 1;
    case GgufType::kUint16:
    case GgufType::kInt16: return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32: return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64: return 8;
    default: return 0;
  }
}

bool read_scalar(Reader& r, GgufType t, int64_t& i, double& f) {
  switch (t) {
    case GgufType::kUint8: {
      uint8_t v;
      if (!r.read(v)) return false;
      i = v;
      return true;
    }
    case GgufType::kInt8: {
      int8_t v;
      if (!r.read(v)) return false;
      i = v;
      return true;
    }
    case GgufType::kBool: {
      uint8_t v;
      if (!r.read(v)) return false;
      i = v != 0;
      return true;
    }
    case GgufType::kUint16: {
      uint16_t v;
      if (!r.read(v)) return false;
      i = v;
      return true;
    }
    case GgufType::kInt16: {
      int16_t v;
      if (!r.read(v)) return false;
      i = v;
      return true;
    }
    case GgufType::kUint32: {
      uint32_t v;
      if (!r.read(v)) return false;
      i = v;
      return true;
    }
    case GgufType::kInt32: {
      int32_t v;
      if (!r.read(v)) return false;
      i = v;
      return true;
    }
    case GgufType::kUint64: {
      uint64_t v;
      if (!r.read(v)) return false;
      i = static_cast<int64_t>(v);
      return true;
    }
    case GgufType::kInt64: {
      int64_t v;
      if (!r.read(v)) return false;
      i = v;
      return true;
    }
    case GgufType::kFloat32: {
      float v;
      if (!r.read(v)) return false;
      f = v;
      return true;
    }
    case GgufType::kFloat64: {
      double v;
      if (!r.read(v)) return false;
      f = v;
      return true;
    }
    default: return false;
  }
}

// Returns an empty string on success, else what went wrong.
std::string read_value(Reader& r, GgufType type, GgufValue& out, int depth) {
  out.type = type;
  if (type == GgufType::kString) return r.read_string(out.str) ? "" : "truncated string";
  if (type != GgufType::kArray) {
    if (scalar_size(type) == 0)
      return "unknown value type " + std::to_string(static_cast<uint32_t>(type));
    return read_scalar(r, type, out.i, out.f) ? "" : "truncated value";
  }
  if (depth >= kMaxArrayDepth) return "arrays nested too deeply";
  uint32_t et = 0;
  uint64_t n = 0;
  if (!r.read(et) || !r.read(n)) return "truncated array header";
  out.elem_type = static_cast<GgufType>(et);
  out.array_len = n;
  // Every element takes at least one byte (strings at least 8), so a count larger than the rest
  // of the file is corrupt; checking before reserving keeps a huge count from exhausting memory.
  const size_t min_elem = out.elem_type == GgufType::kString  ? 8
                          : out.elem_type == GgufType::kArray ? 12
                                                              : scalar_size(out.elem_type);
  if (min_elem == 0) return "unknown array element type " + std::to_string(et);
  if (n > r.remaining() / min_elem)
    return "array length " + std::to_string(n) + " exceeds file size";
  const auto count = static_cast<size_t>(n);
  if (out.elem_type == GgufType::kString) {
    out.strings.resize(count);
    for (size_t k = 0; k < count; ++k) {
      if (!r.read_string(out.strings[k])) return "truncated string in array";
    }
  } else if (out.elem_type == GgufType::kArray) {
    for (size_t k = 0; k < count; ++k) {
      GgufValue inner;
      std::string err = read_value(r, GgufType::kArray, inner, depth + 1);
      if (!err.empty()) return err;
    }
  } else if (out.elem_type == GgufType::kFloat32 || out.elem_type == GgufType::kFloat64) {
    out.floats.resize(count);
    for (size_t k = 0; k < count; ++k) {
      int64_t dummy = 0;
      if (!read_scalar(r, out.elem_type, dummy, out.floats[k])) return "truncated array";
    }
  } else {
    out.ints.resize(count);
    for (size_t k = 0; k < count; ++k) {
      double dummy = 0;
      if (!read_scalar(r, out.elem_type, out.ints[k], dummy)) return "truncated array";
    }
  }
  return "";
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t& out) {
  return __builtin_mul_overflow(a, b, &out);
}

}  // namespace

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kUint16:
    case GgufType::kInt16:
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kBool: return true;
    default: return false;
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Result<GgufFile> GgufFile::parse(const MappedFile& file) {
  const std::string fname = file.path().filename().string();
  Reader r(file.data(), file.size());
  GgufFile g;
  uint32_t magic = 0;
  if (!r.read(magic) || magic != kGgufMagic)
    return data_loss(fname + ": not a GGUF file (bad magic)", "magic");
  if (!r.read(g.version_)) return data_loss(fname + ": truncated header", "version");
  if (g.version_ != 2 && g.version_ != 3) {
    return unimplemented(fname + ": unsupported GGUF version " + std::to_string(g.version_),
                         "version");
  }
  uint64_t n_tensors = 0, n_kv = 0;
  if (!r.read(n_tensors) || !r.read(n_kv)) return data_loss(fname + ": truncated header", "header");
  // A key/value needs at least 12 bytes, a tensor info at least 24.
  if (n_kv > r.remaining() / 12) {
    return data_loss(fname + ": metadata count " + std::to_string(n_kv) + " exceeds file size",
                     "metadata_kv_count");
  }
  if (n_tensors > r.remaining() / 24) {
    return data_loss(fname + ": tensor count " + std::to_string(n_tensors) + " exceeds file size",
                     "tensor_count");
  }
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key;
    if (!r.read_string(key))
      return data_loss(fname + ": truncated metadata key #" + std::to_string(k), "metadata");
    uint32_t type = 0;
    if (!r.read(type)) return data_loss(fname + ": metadata " + key + ": truncated", key);
    GgufValue v;
    std::string err = read_value(r, static_cast<GgufType>(type), v, 0);
    if (!err.empty()) return data_loss(fname + ": metadata " + key + ": " + err, key);
    g.kv_[key] = std::move(v);
  }
  if (const GgufValue* a = g.find("general.alignment")) {
    if (!a->is_integer() || a->i <= 0 || (a->i & (a->i - 1)) != 0 || a->i > 65536) {
      return data_loss(fname + ": general.alignment must be a power of two", "general.alignment");
    }
    g.alignment_ = static_cast<uint64_t>(a->i);
  }
  g.tensors_.resize(static_cast<size_t>(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo& t = g.tensors_[k];
    if (!r.read_string(t.name))
      return data_loss(fname + ": truncated tensor info #" + std::to_string(k), "tensor_info");
    const std::string where = fname + ": tensor " + t.name;
    uint32_t n_dims = 0;
    if (!r.read(n_dims)) return data_loss(where + ": truncated", t.name);
    if (n_dims == 0 || n_dims > kMaxDims)
      return data_loss(where + ": bad dimension count " + std::to_string(n_dims), t.name);
    t.dims.resize(n_dims);
    for (auto& d : t.dims) {
      if (!r.read(d)) return data_loss(where + ": truncated", t.name);
    }
    if (!r.read(t.ggml_type) || !r.read(t.offset)) return data_loss(where + ": truncated", t.name);
    if (g.tensor_index_.count(t.name) != 0)
      return data_loss(where + ": duplicate tensor name", t.name);
    g.tensor_index_[t.name] = static_cast<size_t>(k);
  }
  const uint64_t a = g.alignment_;
  g.data_offset_ = (r.pos() + a - 1) / a * a;
  if (n_tensors > 0 && g.data_offset_ > file.size()) {
    return data_loss(fname + ": data section starts past end of file", "data_offset");
  }
  for (GgufTensorInfo& t : g.tensors_) {
    const std::string where = fname + ": tensor " + t.name;
    uint64_t n_elems = 1;
    for (uint64_t d : t.dims) {
      if (mul_overflows(n_elems, d, n_elems) || n_elems > (uint64_t{1} << 40)) {
        return data_loss(where + ": shape too large", t.name);
      }
    }
    uint64_t bytes = 0;
    switch (t.ggml_type) {
      case kGgmlF32: bytes = n_elems * 4; break;
      case kGgmlF16:
      case kGgmlBF16: bytes = n_elems * 2; break;
      case kGgmlQ8_0:
        if (t.dims[0] % kQ8BlockSize != 0)
          return data_loss(where + ": Q8_0 row length not a multiple of 32", t.name);
        bytes = n_elems / kQ8BlockSize * kQ8BlockBytes;
        break;
      default:
        return unimplemented(where + ": unsupported tensor type " + std::to_string(t.ggml_type),
                             t.name);
    }
    if (t.offset % a != 0)
      return data_loss(where + ": offset not aligned to " + std::to_string(a), t.name);
    const uint64_t avail = file.size() - g.data_offset_;
    if (t.offset > avail || bytes > avail - t.offset) {
      return data_loss(where + ": data extends past end of file", t.name);
    }
    t.data = file.data() + g.data_offset_ + t.offset;
    t.size_bytes = static_cast<size_t>(bytes);
  }
  return g;
}

// ---------------------------------------------------------------------------------------------
// GGUF -> Model

namespace {

struct MetaReader {
  const GgufFile& g;
  std::string fname;

  Status get_int(const std::string& key, int& out, bool required) const {
    const GgufValue* v = g.find(key);
    if (v == nullptr)
      return required ? not_found(fname + ": missing metadata " + key, key) : Status::ok();
    if (!v->is_integer() || v->i < 0 || v->i > std::numeric_limits<int>::max()) {
      return data_loss(fname + ": metadata " + key + ": expected a non-negative integer", key);
    }
    out = static_cast<int>(v->i);
    return Status::ok();
  }
  Status get_float(const std::string& key, float& out, bool required) const {
    const GgufValue* v = g.find(key);
    if (v == nullptr)
      return required ? not_found(fname + ": missing metadata " + key, key) : Status::ok();
    if (v->is_float())
      out = static_cast<float>(v->f);
    else if (v->is_integer())
      out = static_cast<float>(v->i);
    else
      return data_loss(fname + ": metadata " + key + ": expected a number", key);
    return Status::ok();
  }
  Status get_bool(const std::string& key, bool& out) const {
    const GgufValue* v = g.find(key);
    if (v == nullptr) return Status::ok();
    if (!v->is_integer()) return data_loss(fname + ": metadata " + key + ": expected a bool", key);
    out = v->i != 0;
    return Status::ok();
  }
  Status get_string(const std::string& key, std::string& out) const {
    const GgufValue* v = g.find(key);
    if (v == nullptr) return Status::ok();
    if (v->type != GgufType::kString)
      return data_loss(fname + ": metadata " + key + ": expected a string", key);
    out = v->str;
    return Status::ok();
  }
  // Token ids: files write "none" as -1 (or as 0xFFFFFFFF in a uint32), both mean absent.
  Status get_id(const std::string& key, int32_t& out) const {
    const GgufValue* v = g.find(key);
    if (v == nullptr) return Status::ok();
    if (!v->is_integer())
      return data_loss(fname + ": metadata " + key + ": expected an integer", key);
    out =
        (v->i < 0 || v->i > std::numeric_limits<int32_t>::max()) ? -1 : static_cast<int32_t>(v->i);
    return Status::ok();
  }
};

Result<TensorView> tensor_view(const GgufFile& g, const std::string& fname, const std::string& name,
                               bool required) {
  const GgufTensorInfo* t = g.find_tensor(name);
  if (t == nullptr) {
    if (required) return not_found(fname + ": missing tensor " + name, name);
    return TensorView{};
  }
  TensorView v;
  switch (t->ggml_type) {
    case kGgmlF32: v.dtype = DType::kF32; break;
    case kGgmlF16: v.dtype = DType::kF16; break;
    case kGgmlBF16: v.dtype = DType::kBF16; break;
    case kGgmlQ8_0: v.dtype = DType::kQ8_0; break;
    default: return unimplemented(fname + ": tensor " + name + ": unsupported type", name);
  }
  if (t->dims.size() > 2) {
    for (size_t k = 2; k < t->dims.size(); ++k) {
      if (t->dims[k] != 1)
        return data_loss(fname + ": tensor " + name + ": expected at most 2 dimensions", name);
    }
  }
  v.cols = static_cast<int64_t>(t->dims[0]);
  v.rows = t->dims.size() > 1 ? static_cast<int64_t>(t->dims[1]) : 1;
  v.data = t->data;
  v.size_bytes = t->size_bytes;
  v.name = name;
  return v;
}

Status load_vocab(const MetaReader& m, VocabSpec& vocab) {
  const GgufFile& g = m.g;
  TURBINE_RETURN_IF_ERROR(m.get_string("tokenizer.ggml.model", vocab.model));
  if (const GgufValue* v = g.find("tokenizer.ggml.tokens")) {
    if (v->type != GgufType::kArray || v->elem_type != GgufType::kString) {
      return data_loss(m.fname + ": metadata tokenizer.ggml.tokens: expected an array of strings",
                       "tokenizer.ggml.tokens");
    }
    vocab.tokens = v->strings;
  }
  if (const GgufValue* v = g.find("tokenizer.ggml.scores")) {
    if (v->type != GgufType::kArray || v->floats.size() != v->array_len ||
        v->array_len != vocab.tokens.size()) {
      return data_loss(m.fname + ": metadata tokenizer.ggml.scores: expected one float per token",
                       "tokenizer.ggml.scores");
    }
    vocab.scores.assign(v->floats.begin(), v->floats.end());
  }
  if (const GgufValue* v = g.find("tokenizer.ggml.token_type")) {
    if (v->type != GgufType::kArray || v->ints.size() != v->array_len ||
        v->array_len != vocab.tokens.size()) {
      return data_loss(
          m.fname + ": metadata tokenizer.ggml.token_type: expected one integer per token",
          "tokenizer.ggml.token_type");
    }
    vocab.token_types.assign(v->ints.begin(), v->ints.end());
  }
  if (const GgufValue* v = g.find("tokenizer.ggml.merges")) {
    if (v->type != GgufType::kArray || v->elem_type != GgufType::kString) {
      return data_loss(m.fname + ": metadata tokenizer.ggml.merges: expected an array of strings",
                       "tokenizer.ggml.merges");
    }
    vocab.merges = v->strings;
  }
  TURBINE_RETURN_IF_ERROR(m.get_string("tokenizer.ggml.pre", vocab.pre));
  TURBINE_RETURN_IF_ERROR(m.get_id("tokenizer.ggml.bos_token_id", vocab.bos_id));
  TURBINE_RETURN_IF_ERROR(m.get_id("tokenizer.ggml.eos_token_id", vocab.eos_id));
  TURBINE_RETURN_IF_ERROR(m.get_id("tokenizer.ggml.unknown_token_id", vocab.unk_id));
  TURBINE_RETURN_IF_ERROR(m.get_id("tokenizer.ggml.padding_token_id", vocab.pad_id));
  // llama.cpp's defaults: SentencePiece vocabularies add BOS and a space prefix, BPE ones do not.
  const bool spm = vocab.model == "llama";
  vocab.add_bos = spm;
  vocab.add_space_prefix = spm;
  TURBINE_RETURN_IF_ERROR(m.get_bool("tokenizer.ggml.add_bos_token", vocab.add_bos));
  TURBINE_RETURN_IF_ERROR(m.get_bool("tokenizer.ggml.add_eos_token", vocab.add_eos));
  TURBINE_RETURN_IF_ERROR(m.get_bool("tokenizer.ggml.add_space_prefix", vocab.add_space_prefix));
  TURBINE_RETURN_IF_ERROR(m.get_string("tokenizer.chat_template", vocab.chat_template));
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<Model>> load_gguf(const std::filesystem::path& path, MappedFile::Mode mode) {
  TURBINE_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path, mode));
  TURBINE_ASSIGN_OR_RETURN(GgufFile g, GgufFile::parse(file));
  const std::string fname = path.filename().string();
  MetaReader m{g, fname};

  auto model = std::make_unique<LoadedModel>();
  ModelConfig& c = model->mutable_config();
  std::string arch;
  TURBINE_RETURN_IF_ERROR(m.get_string("general.architecture", arch));
  if (arch.empty())
    return not_found(fname + ": missing metadata general.architecture", "general.architecture");
  c.arch_name = arch;
  if (arch == "llama") {
    c.arch = Arch::kLlama;
    c.rope_layout = RopeLayout::kInterleaved;  // llama.cpp permutes llama Q/K on conversion
  } else if (arch == "qwen2") {
    c.arch = Arch::kQwen2;
    c.rope_layout = RopeLayout::kHalves;  // NEOX rope, not permuted
    c.qkv_bias = true;
  } else if (arch == "qwen3") {
    c.arch = Arch::kQwen3;
    c.rope_layout = RopeLayout::kHalves;
    c.qk_norm = true;
  } else {
    return unimplemented(fname + ": unsupported architecture '" + arch + "'",
                         "general.architecture");
  }
  const std::string p = arch + ".";
  TURBINE_RETURN_IF_ERROR(m.get_int(p + "context_length", c.max_context, true));
  TURBINE_RETURN_IF_ERROR(m.get_int(p + "embedding_length", c.dim, true));
  TURBINE_RETURN_IF_ERROR(m.get_int(p + "block_count", c.n_layers, true));
  TURBINE_RETURN_IF_ERROR(m.get_int(p + "feed_forward_length", c.ffn_dim, true));
  TURBINE_RETURN_IF_ERROR(m.get_int(p + "attention.head_count", c.n_heads, true));
  c.n_kv_heads = c.n_heads;
  TURBINE_RETURN_IF_ERROR(m.get_int(p + "attention.head_count_kv", c.n_kv_heads, false));
  TURBINE_RETURN_IF_ERROR(m.get_float(p + "attention.layer_norm_rms_epsilon", c.norm_eps, true));
  c.rope_theta = 10000.0f;
  TURBINE_RETURN_IF_ERROR(m.get_float(p + "rope.freq_base", c.rope_theta, false));
  c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
  TURBINE_RETURN_IF_ERROR(m.get_int(p + "attention.key_length", c.head_dim, false));
  int value_length = c.head_dim;
  TURBINE_RETURN_IF_ERROR(m.get_int(p + "attention.value_length", value_length, false));
  if (value_length != c.head_dim) {
    return unimplemented(fname + ": attention.value_length != key_length is not supported",
                         p + "attention.value_length");
  }
  int rope_dims = c.head_dim;
  TURBINE_RETURN_IF_ERROR(m.get_int(p + "rope.dimension_count", rope_dims, false));
  if (rope_dims != c.head_dim) {
    return unimplemented(fname + ": partial rotary embedding (rope.dimension_count " +
                             std::to_string(rope_dims) + " != head dim " +
                             std::to_string(c.head_dim) + ") is not supported",
                         p + "rope.dimension_count");
  }
  if (const GgufValue* st = g.find(p + "rope.scaling.type");
      st != nullptr && st->type == GgufType::kString && st->str != "none" && !st->str.empty()) {
    return unimplemented(fname + ": rope scaling '" + st->str + "' is not supported",
                         p + "rope.scaling.type");
  }

  TURBINE_RETURN_IF_ERROR(load_vocab(m, model->mutable_vocab()));

  Weights& w = model->mutable_weights();
  TURBINE_ASSIGN_OR_RETURN(w.tok_embeddings, tensor_view(g, fname, "token_embd.weight", true));
  TURBINE_ASSIGN_OR_RETURN(w.output_norm, tensor_view(g, fname, "output_norm.weight", true));
  TURBINE_ASSIGN_OR_RETURN(w.output, tensor_view(g, fname, "output.weight", false));
  if (!w.output.present()) {
    w.output = w.tok_embeddings;
    c.tie_embeddings = true;
  }
  c.n_vocab = static_cast<int>(w.tok_embeddings.rows);
  int meta_vocab = 0;
  TURBINE_RETURN_IF_ERROR(m.get_int(p + "vocab_size", meta_vocab, false));
  if (meta_vocab != 0 && meta_vocab != c.n_vocab) {
    return data_loss(fname + ": " + p + "vocab_size " + std::to_string(meta_vocab) +
                         " != token_embd.weight rows " + std::to_string(c.n_vocab),
                     p + "vocab_size");
  }
  if (c.n_layers > 4096) return data_loss(fname + ": block_count too large", p + "block_count");
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    LayerWeights& L = w.layers[static_cast<size_t>(l)];
    TURBINE_ASSIGN_OR_RETURN(L.attn_norm, tensor_view(g, fname, b + "attn_norm.weight", true));
    TURBINE_ASSIGN_OR_RETURN(L.wq, tensor_view(g, fname, b + "attn_q.weight", true));
    TURBINE_ASSIGN_OR_RETURN(L.wk, tensor_view(g, fname, b + "attn_k.weight", true));
    TURBINE_ASSIGN_OR_RETURN(L.wv, tensor_view(g, fname, b + "attn_v.weight", true));
    TURBINE_ASSIGN_OR_RETURN(L.wo, tensor_view(g, fname, b + "attn_output.weight", true));
    TURBINE_ASSIGN_OR_RETURN(L.bq, tensor_view(g, fname, b + "attn_q.bias", c.qkv_bias));
    TURBINE_ASSIGN_OR_RETURN(L.bk, tensor_view(g, fname, b + "attn_k.bias", c.qkv_bias));
    TURBINE_ASSIGN_OR_RETURN(L.bv, tensor_view(g, fname, b + "attn_v.bias", c.qkv_bias));
    TURBINE_ASSIGN_OR_RETURN(L.q_norm, tensor_view(g, fname, b + "attn_q_norm.weight", c.qk_norm));
    TURBINE_ASSIGN_OR_RETURN(L.k_norm, tensor_view(g, fname, b + "attn_k_norm.weight", c.qk_norm));
    TURBINE_ASSIGN_OR_RETURN(L.ffn_norm, tensor_view(g, fname, b + "ffn_norm.weight", true));
    TURBINE_ASSIGN_OR_RETURN(L.w_gate, tensor_view(g, fname, b + "ffn_gate.weight", true));
    TURBINE_ASSIGN_OR_RETURN(L.w_up, tensor_view(g, fname, b + "ffn_up.weight", true));
    TURBINE_ASSIGN_OR_RETURN(L.w_down, tensor_view(g, fname, b + "ffn_down.weight", true));
  }
  TURBINE_RETURN_IF_ERROR(validate_config(c, fname));
  TURBINE_RETURN_IF_ERROR(validate_weights(c, w, fname));
  const VocabSpec& vocab = model->vocab();
  if (!vocab.tokens.empty() && static_cast<int>(vocab.tokens.size()) != c.n_vocab) {
    return data_loss(fname + ": tokenizer.ggml.tokens has " + std::to_string(vocab.tokens.size()) +
                         " entries but token_embd.weight has " + std::to_string(c.n_vocab) +
                         " rows",
                     "tokenizer.ggml.tokens");
  }
  std::string name;
  TURBINE_RETURN_IF_ERROR(m.get_string("general.name", name));
  model->set_name(name.empty() ? path.stem().string() : name);
  model->set_path(path);
  model->own(std::move(file));
  return std::unique_ptr<Model>(std::move(model));
}

Result<ModelInfo> load_gguf_info(const std::filesystem::path& path) {
  // Mapping costs no reads: only the header and key/value pages are touched, never the tensors.
  TURBINE_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
  TURBINE_ASSIGN_OR_RETURN(GgufFile g, GgufFile::parse(file));
  const std::string fname = path.filename().string();
  MetaReader m{g, fname};
  ModelInfo info;
  TURBINE_RETURN_IF_ERROR(m.get_string("general.architecture", info.arch_name));
  if (info.arch_name.empty())
    return not_found(fname + ": missing metadata general.architecture", "general.architecture");
  const std::string p = info.arch_name + ".";
  TURBINE_RETURN_IF_ERROR(m.get_int(p + "context_length", info.max_context, true));
  if (info.max_context <= 0)
    return data_loss(fname + ": max_context: must be positive", p + "context_length");
  TURBINE_RETURN_IF_ERROR(load_vocab(m, info.vocab));
  const GgufTensorInfo* embd = g.find_tensor("token_embd.weight");
  if (embd == nullptr)
    return not_found(fname + ": missing tensor token_embd.weight", "token_embd.weight");
  info.n_vocab = embd->dims.size() > 1 ? static_cast<int>(embd->dims[1]) : 1;
  if (!info.vocab.tokens.empty() && static_cast<int>(info.vocab.tokens.size()) != info.n_vocab) {
    return data_loss(
        fname + ": tokenizer.ggml.tokens has " + std::to_string(info.vocab.tokens.size()) +
            " entries but token_embd.weight has " + std::to_string(info.n_vocab) + " rows",
        "tokenizer.ggml.tokens");
  }
  std::string name;
  TURBINE_RETURN_IF_ERROR(m.get_string("general.name", name));
  info.name = name.empty() ? path.stem().string() : name;
  info.path = path;
  return info;
}

}  // namespace turbine::model
