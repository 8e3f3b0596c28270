#include "model/llama2c.h"

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "model/loaded_model.h"
#include "model/mapped_file.h"
#include "model/model_writer.h"

namespace turbine::model {
namespace {

namespace fs = std::filesystem;

// Every size in a header must be positive and small enough that the products below cannot
// overflow 64 bits (validate_config applies the real limits afterwards).
bool header_sane(const Llama2cHeader& h) {
  const auto in = [](int32_t v, int32_t hi) { return v > 0 && v <= hi; };
  const int64_t vocab = h.vocab_size < 0 ? -int64_t{h.vocab_size} : h.vocab_size;
  return in(h.dim, 1 << 20) && in(h.hidden_dim, 1 << 22) && in(h.n_layers, 4096) &&
         in(h.n_heads, 4096) && in(h.n_kv_heads, 4096) && vocab > 0 && vocab <= (1 << 24) &&
         in(h.seq_len, 1 << 24) && h.dim % h.n_heads == 0;
}

// "\xE2\x96\x81" is SentencePiece's word-boundary marker "▁".
std::string spaces_to_marker(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    if (ch == ' ')
      out += "\xE2\x96\x81";
    else
      out += ch;
  }
  return out;
}

bool is_byte_piece(const std::string& s) {
  const auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  return s.size() == 6 && s.compare(0, 3, "<0x") == 0 && hex(s[3]) && hex(s[4]) && s[5] == '>';
}

}  // namespace

uint64_t llama2c_weight_floats(const Llama2cHeader& h) {
  if (!header_sane(h)) return 0;
  const uint64_t dim = static_cast<uint64_t>(h.dim), hidden = static_cast<uint64_t>(h.hidden_dim),
                 layers = static_cast<uint64_t>(h.n_layers),
                 vocab = static_cast<uint64_t>(h.vocab_size < 0 ? -h.vocab_size : h.vocab_size);
  const uint64_t head = dim / static_cast<uint64_t>(h.n_heads);
  const uint64_t q_dim = static_cast<uint64_t>(h.n_heads) * head;
  const uint64_t kv_dim = static_cast<uint64_t>(h.n_kv_heads) * head;
  uint64_t n = vocab * dim;                      // token embedding
  n += layers * dim;                             // rms_att
  n += layers * dim * q_dim;                     // wq
  n += 2 * layers * dim * kv_dim;                // wk, wv
  n += layers * q_dim * dim;                     // wo
  n += layers * dim;                             // rms_ffn
  n += 3 * layers * dim * hidden;                // w1, w2, w3
  n += dim;                                      // rms_final
  n += static_cast<uint64_t>(h.seq_len) * head;  // freq_cis_real + freq_cis_imag (unused)
  if (h.vocab_size < 0) n += vocab * dim;        // wcls
  return n;
}

Result<VocabSpec> parse_llama2c_tokenizer(std::span<const uint8_t> bytes, int n_vocab,
                                          const std::string& name) {
  size_t pos = 0;
  const auto read_i32 = [&](int32_t& v) {
    if (bytes.size() - pos < 4) return false;
    std::memcpy(&v, bytes.data() + pos, 4);
    pos += 4;
    return true;
  };
  int32_t max_len = 0;
  if (!read_i32(max_len) || max_len <= 0)
    return data_loss(name + ": not a llama2.c tokenizer (bad max_token_length)",
                     "max_token_length");
  VocabSpec v;
  v.model = "llama";
  v.tokens.reserve(static_cast<size_t>(n_vocab));
  v.scores.reserve(static_cast<size_t>(n_vocab));
  v.token_types.reserve(static_cast<size_t>(n_vocab));
  for (int i = 0; i < n_vocab; ++i) {
    float score = 0.0f;
    int32_t len = 0;
    if (bytes.size() - pos < 8) {
      return data_loss(name + ": truncated at token " + std::to_string(i) + " of " +
                           std::to_string(n_vocab) + " (does it belong to this model?)",
                       "tokens");
    }
    std::memcpy(&score, bytes.data() + pos, 4);
    std::memcpy(&len, bytes.data() + pos + 4, 4);
    pos += 8;
    if (len < 0 || len > max_len || static_cast<size_t>(len) > bytes.size() - pos) {
      return data_loss(
          name + ": token " + std::to_string(i) + ": bad length " + std::to_string(len), "tokens");
    }
    std::string piece(reinterpret_cast<const char*>(bytes.data() + pos), static_cast<size_t>(len));
    pos += static_cast<size_t>(len);
    int32_t type = 1;  // GGUF token types: 1 normal, 2 unknown, 3 control, 6 byte
    if (i == 1 && piece == "\n<s>\n") {
      piece = "<s>";
      type = 3;
      v.bos_id = 1;
    } else if (i == 2 && piece == "\n</s>\n") {
      piece = "</s>";
      type = 3;
      v.eos_id = 2;
    } else if (i == 0 && piece == "<unk>") {
      type = 2;
      v.unk_id = 0;
    } else if (is_byte_piece(piece)) {
      type = 6;
    } else {
      piece = spaces_to_marker(piece);
    }
    v.tokens.push_back(std::move(piece));
    v.scores.push_back(score);
    v.token_types.push_back(type);
  }
  if (pos != bytes.size()) {
    return data_loss(name + ": " + std::to_string(bytes.size() - pos) +
                         " bytes left after the model's " + std::to_string(n_vocab) +
                         " tokens (a tokenizer for a larger vocabulary?)",
                     "tokens");
  }
  // run.c always starts with BOS = 1 and stops at EOS = 2 / BOS; SentencePiece adds the space.
  if (v.bos_id < 0 && n_vocab > 1) v.bos_id = 1;
  if (v.eos_id < 0 && n_vocab > 2) v.eos_id = 2;
  v.add_bos = true;
  v.add_space_prefix = true;
  return v;
}

Result<VocabSpec> load_llama2c_tokenizer(const fs::path& path, int n_vocab) {
  TURBINE_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
  return parse_llama2c_tokenizer(std::span<const uint8_t>(file.data(), file.size()), n_vocab,
                                 path.filename().string());
}

Result<fs::path> find_llama2c_tokenizer(const fs::path& checkpoint) {
  const fs::path dir = checkpoint.has_parent_path() ? checkpoint.parent_path() : fs::path(".");
  std::error_code ec;
  if (fs::is_regular_file(dir / "tokenizer.bin", ec)) return dir / "tokenizer.bin";
  std::vector<fs::path> found;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("tok", 0) == 0 && it->path().extension() == ".bin" && it->path() != checkpoint &&
        it->is_regular_file(ec)) {
      found.push_back(it->path());
    }
  }
  if (found.size() > 1) {
    return invalid_argument(checkpoint.filename().string() + ": several tok*.bin tokenizers in " +
                                dir.string() + " and no tokenizer.bin; keep one",
                            "tokenizer");
  }
  return found.empty() ? fs::path() : found[0];
}

Result<std::unique_ptr<Model>> load_llama2c(const fs::path& path, MappedFile::Mode mode) {
  TURBINE_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path, mode));
  const std::string fname = path.filename().string();
  if (file.size() < kLlama2cHeaderBytes)
    return data_loss(
        fname + ": truncated llama2.c header (" + std::to_string(file.size()) + " bytes)",
        "header");
  Llama2cHeader h;
  std::memcpy(&h, file.data(), kLlama2cHeaderBytes);
  if (std::memcmp(file.data(), "24ka", 4) == 0) {  // llama2.c export.py version >= 1 ("ak42")
    return unimplemented(fname +
                             ": llama2.c checkpoint versions >= 1 are not supported; export "
                             "with --version 0 (legacy)",
                         "version");
  }
  const uint64_t n_floats = llama2c_weight_floats(h);
  if (n_floats == 0) {
    return data_loss(
        fname + ": not a llama2.c checkpoint: header dim=" + std::to_string(h.dim) +
            " hidden_dim=" + std::to_string(h.hidden_dim) +
            " n_layers=" + std::to_string(h.n_layers) + " n_heads=" + std::to_string(h.n_heads) +
            " n_kv_heads=" + std::to_string(h.n_kv_heads) +
            " vocab_size=" + std::to_string(h.vocab_size) + " seq_len=" + std::to_string(h.seq_len),
        "header");
  }
  const uint64_t want = kLlama2cHeaderBytes + n_floats * sizeof(float);
  if (file.size() != want) {
    return data_loss(fname + ": " + std::to_string(file.size()) + " bytes but its header needs " +
                         std::to_string(want) +
                         (file.size() < want ? " (truncated)" : " (trailing bytes: corrupt?)"),
                     "size");
  }

  auto model = std::make_unique<LoadedModel>();
  ModelConfig& c = model->mutable_config();
  c.arch = Arch::kLlama;
  c.arch_name = "llama2.c";
  c.dim = h.dim;
  c.ffn_dim = h.hidden_dim;
  c.n_layers = h.n_layers;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads;
  c.head_dim = h.dim / h.n_heads;
  c.n_vocab = h.vocab_size < 0 ? -h.vocab_size : h.vocab_size;
  c.max_context = h.seq_len;
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.rope_layout = RopeLayout::kInterleaved;  // run.c rotates (2i, 2i+1)
  c.tie_embeddings = h.vocab_size > 0;
  TURBINE_RETURN_IF_ERROR(validate_config(c, fname));

  const auto* base = reinterpret_cast<const float*>(file.data() + kLlama2cHeaderBytes);
  const float* p = base;
  // Views of `count` consecutive [rows x cols] matrices starting at p; advances p.
  const auto take = [&](const char* role, int64_t rows, int64_t cols) {
    TensorView t;
    t.dtype = DType::kF32;
    t.rows = rows;
    t.cols = cols;
    t.data = p;
    t.size_bytes = static_cast<size_t>(rows * cols) * sizeof(float);
    t.name = role;
    p += rows * cols;
    return t;
  };
  const int64_t dim = c.dim, hidden = c.ffn_dim, vocab = c.n_vocab;
  const int64_t q_dim = int64_t{c.n_heads} * c.head_dim,
                kv_dim = int64_t{c.n_kv_heads} * c.head_dim;
  Weights& w = model->mutable_weights();
  w.layers.resize(static_cast<size_t>(c.n_layers));
  w.tok_embeddings = take("token_embedding_table", vocab, dim);
  const auto per_layer = [&](const char* role, int64_t rows, int64_t cols,
                             TensorView LayerWeights::*field) {
    for (int l = 0; l < c.n_layers; ++l) {
      w.layers[static_cast<size_t>(l)].*field =
          take((std::string(role) + "[" + std::to_string(l) + "]").c_str(), rows, cols);
    }
  };
  per_layer("rms_att_weight", 1, dim, &LayerWeights::attn_norm);
  per_layer("wq", q_dim, dim, &LayerWeights::wq);
  per_layer("wk", kv_dim, dim, &LayerWeights::wk);
  per_layer("wv", kv_dim, dim, &LayerWeights::wv);
  per_layer("wo", dim, q_dim, &LayerWeights::wo);
  per_layer("rms_ffn_weight", 1, dim, &LayerWeights::ffn_norm);
  per_layer("w1", hidden, dim, &LayerWeights::w_gate);
  per_layer("w2", dim, hidden, &LayerWeights::w_down);
  per_layer("w3", hidden, dim, &LayerWeights::w_up);
  w.output_norm = take("rms_final_weight", 1, dim);
  p += int64_t{h.seq_len} * c.head_dim;  // freq_cis_real, freq_cis_imag
  w.output = c.tie_embeddings ? w.tok_embeddings : take("wcls", vocab, dim);
  TURBINE_RETURN_IF_ERROR(validate_weights(c, w, fname));

  TURBINE_ASSIGN_OR_RETURN(fs::path tok_path, find_llama2c_tokenizer(path));
  if (!tok_path.empty()) {
    TURBINE_ASSIGN_OR_RETURN(model->mutable_vocab(), load_llama2c_tokenizer(tok_path, c.n_vocab));
  }
  model->set_name(path.stem().string());
  model->set_path(path);
  model->own(std::move(file));
  return std::unique_ptr<Model>(std::move(model));
}

Result<ModelInfo> load_llama2c_info(const fs::path& path) {
  const std::string fname = path.filename().string();
  Llama2cHeader h;
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(fname + ": cannot open " + path.string());
  if (!in.read(reinterpret_cast<char*>(&h), kLlama2cHeaderBytes))
    return data_loss(fname + ": truncated llama2.c header", "header");
  if (std::memcmp(&h, "24ka", 4) == 0) {
    return unimplemented(fname +
                             ": llama2.c checkpoint versions >= 1 are not supported; export "
                             "with --version 0 (legacy)",
                         "version");
  }
  if (llama2c_weight_floats(h) == 0)
    return data_loss(fname + ": not a llama2.c checkpoint (inconsistent header)", "header");
  ModelInfo info;
  info.name = path.stem().string();
  info.path = path;
  info.arch_name = "llama2.c";
  info.n_vocab = h.vocab_size < 0 ? -h.vocab_size : h.vocab_size;
  info.max_context = h.seq_len;
  TURBINE_ASSIGN_OR_RETURN(fs::path tok_path, find_llama2c_tokenizer(path));
  if (!tok_path.empty()) {
    TURBINE_ASSIGN_OR_RETURN(info.vocab, load_llama2c_tokenizer(tok_path, info.n_vocab));
  }
  return info;
}

Status write_llama2c(const fs::path& path, const Llama2cHeader& h, std::span<const float> weights) {
  const uint64_t n = llama2c_weight_floats(h);
  if (n == 0) return invalid_argument("llama2.c header is inconsistent", "header");
  if (weights.size() != n) {
    return invalid_argument("llama2.c header needs " + std::to_string(n) + " floats, got " +
                                std::to_string(weights.size()),
                            "weights");
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return invalid_argument(path.string() + ": cannot create");
  out.write(reinterpret_cast<const char*>(&h), kLlama2cHeaderBytes);
  out.write(reinterpret_cast<const char*>(weights.data()),
            static_cast<std::streamsize>(weights.size() * sizeof(float)));
  if (!out) return internal_error(path.string() + ": write failed");
  return Status::ok();
}

Status write_llama2c_as_gguf(const fs::path& path, const Llama2cHeader& h,
                             std::span<const float> weights, const VocabSpec& vocab,
                             const std::string& name) {
  const uint64_t n = llama2c_weight_floats(h);
  if (n == 0 || weights.size() != n)
    return invalid_argument("llama2.c header and weights disagree", "weights");
  const int64_t dim = h.dim, hidden = h.hidden_dim, layers = h.n_layers;
  const int64_t vocab_n = h.vocab_size < 0 ? -int64_t{h.vocab_size} : h.vocab_size;
  const int64_t head = dim / h.n_heads, q_dim = h.n_heads * head, kv_dim = h.n_kv_heads * head;
  if (vocab.model != "llama" || static_cast<int64_t>(vocab.tokens.size()) != vocab_n ||
      vocab.scores.size() != vocab.tokens.size() ||
      vocab.token_types.size() != vocab.tokens.size()) {
    return invalid_argument("vocabulary must be a llama (SentencePiece) vocabulary of " +
                                std::to_string(vocab_n) + " tokens with scores and types",
                            "vocab");
  }
  GgufWriter g;
  g.add_string("general.architecture", "llama");
  g.add_string("general.name", name);
  g.add_u32("general.file_type", 0);  // all F32
  g.add_u32("llama.context_length", static_cast<uint32_t>(h.seq_len));
  g.add_u32("llama.embedding_length", static_cast<uint32_t>(dim));
  g.add_u32("llama.block_count", static_cast<uint32_t>(layers));
  g.add_u32("llama.feed_forward_length", static_cast<uint32_t>(hidden));
  g.add_u32("llama.attention.head_count", static_cast<uint32_t>(h.n_heads));
  g.add_u32("llama.attention.head_count_kv", static_cast<uint32_t>(h.n_kv_heads));
  g.add_u32("llama.rope.dimension_count", static_cast<uint32_t>(head));
  g.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  g.add_f32("llama.rope.freq_base", 10000.0f);
  g.add_string("tokenizer.ggml.model", "llama");
  g.add_string_array("tokenizer.ggml.tokens", vocab.tokens);
  g.add_f32_array("tokenizer.ggml.scores", vocab.scores);
  g.add_i32_array("tokenizer.ggml.token_type", vocab.token_types);
  if (vocab.bos_id >= 0)
    g.add_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(vocab.bos_id));
  if (vocab.eos_id >= 0)
    g.add_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(vocab.eos_id));
  if (vocab.unk_id >= 0)
    g.add_u32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(vocab.unk_id));
  g.add_bool("tokenizer.ggml.add_bos_token", vocab.add_bos);
  g.add_bool("tokenizer.ggml.add_eos_token", vocab.add_eos);

  const float* p = weights.data();
  // Adds the next [rows x cols] floats of `weights` as one tensor (GGUF dims are [cols, rows]).
  const auto add = [&](const std::string& tensor, int64_t rows, int64_t cols) {
    std::vector<uint8_t> bytes(static_cast<size_t>(rows * cols) * sizeof(float));
    std::memcpy(bytes.data(), p, bytes.size());
    p += rows * cols;
    std::vector<uint64_t> dims = {static_cast<uint64_t>(cols)};
    if (rows > 1) dims.push_back(static_cast<uint64_t>(rows));
    g.add_tensor(tensor, 0 /* GGML_TYPE_F32 */, std::move(dims), std::move(bytes));
  };
  const auto blk = [](int64_t l, const char* what) {
    return "blk." + std::to_string(l) + "." + what + ".weight";
  };
  add("token_embd.weight", vocab_n, dim);
  for (int64_t l = 0; l < layers; ++l) add(blk(l, "attn_norm"), 1, dim);
  for (int64_t l = 0; l < layers; ++l) add(blk(l, "attn_q"), q_dim, dim);
  for (int64_t l = 0; l < layers; ++l) add(blk(l, "attn_k"), kv_dim, dim);
  for (int64_t l = 0; l < layers; ++l) add(blk(l, "attn_v"), kv_dim, dim);
  for (int64_t l = 0; l < layers; ++l) add(blk(l, "attn_output"), dim, q_dim);
  for (int64_t l = 0; l < layers; ++l) add(blk(l, "ffn_norm"), 1, dim);
  for (int64_t l = 0; l < layers; ++l) add(blk(l, "ffn_gate"), hidden, dim);  // w1
  for (int64_t l = 0; l < layers; ++l) add(blk(l, "ffn_down"), dim, hidden);  // w2
  for (int64_t l = 0; l < layers; ++l) add(blk(l, "ffn_up"), hidden, dim);    // w3
  add("output_norm.weight", 1, dim);
  p += int64_t{h.seq_len} * head;  // unused RoPE tables
  if (h.vocab_size < 0) add("output.weight", vocab_n, dim);
  return g.write(path);
}

}  // namespace turbine::model
