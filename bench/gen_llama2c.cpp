// gen_llama2c: writes a random-weight model in llama2.c's checkpoint format (and, optionally, the
// same weights as a GGUF F32 file for llama.cpp), for the CPU decode benchmark.
//
//   gen_llama2c --out DIR/model.bin [--gguf DIR/model-f32.gguf] [--tokenizer tokenizer.bin]
//               [--seed 1] [--dim 768 --hidden 2048 --layers 12 --heads 12 --kv-heads 12
//                --vocab 32000 --seq-len 1024] [--std 0.02]
//
// Defaults are the stories110M shape (shared classifier). Matrices are N(0, std^2), norm weights
// 1, so logits are spread out rather than degenerate. --tokenizer (llama2.c's 32000-token
// tokenizer.bin) is copied next to the .bin as tokenizer.bin and becomes the GGUF vocabulary;
// the GGUF needs it.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "model/llama2c.h"

namespace {

using namespace turbine;
namespace fs = std::filesystem;

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "gen_llama2c: %s\n(see the comment at the top of bench/gen_llama2c.cpp)\n",
               why.c_str());
  std::exit(2);
}

// splitmix64: a tiny seeded generator whose stream is the same on every platform.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>((next() >> 11) + 1) * 0x1.0p-53; }  // (0, 1]
};

// Box-Muller, two normals per pair of uniforms.
void fill_normal(float* out, size_t n, float stddev, Rng& rng) {
  constexpr double kTwoPi = 6.283185307179586;
  for (size_t i = 0; i < n; i += 2) {
    const double r = std::sqrt(-2.0 * std::log(rng.uniform())), a = kTwoPi * rng.uniform();
    out[i] = static_cast<float>(r * std::cos(a)) * stddev;
    if (i + 1 < n) out[i + 1] = static_cast<float>(r * std::sin(a)) * stddev;
  }
}

}  // namespace

int main(int argc, char** argv) {
  model::Llama2cHeader h{768, 2048, 12, 12, 12, 32000, 1024};
  fs::path out, gguf, tok;
  uint64_t seed = 1;
  float stddev = 0.02f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage("missing value for " + a);
    const std::string v = argv[++i];
    const auto num = [&] { return static_cast<int32_t>(std::strtol(v.c_str(), nullptr, 10)); };
    if (a == "--out") {
      out = v;
    } else if (a == "--gguf") {
      gguf = v;
    } else if (a == "--tokenizer") {
      tok = v;
    } else if (a == "--seed") {
      seed = std::strtoull(v.c_str(), nullptr, 10);
    } else if (a == "--std") {
      stddev = std::strtof(v.c_str(), nullptr);
    } else if (a == "--dim") {
      h.dim = num();
    } else if (a == "--hidden") {
      h.hidden_dim = num();
    } else if (a == "--layers") {
      h.n_layers = num();
    } else if (a == "--heads") {
      h.n_heads = num();
    } else if (a == "--kv-heads") {
      h.n_kv_heads = num();
    } else if (a == "--vocab") {
      h.vocab_size = num();
    } else if (a == "--seq-len") {
      h.seq_len = num();
    } else {
      usage("unknown option " + a);
    }
  }
  if (out.empty()) usage("--out is required");
  if (!gguf.empty() && tok.empty()) usage("--gguf needs --tokenizer (the GGUF vocabulary)");
  const uint64_t n = model::llama2c_weight_floats(h);
  if (n == 0) usage("inconsistent shape");

  // Same order as the file: embedding, then per-kind stacks of all layers.
  const int64_t dim = h.dim, hidden = h.hidden_dim, layers = h.n_layers;
  const int64_t vocab = h.vocab_size < 0 ? -int64_t{h.vocab_size} : h.vocab_size;
  const int64_t head = dim / h.n_heads, kv_dim = h.n_kv_heads * head;
  std::vector<float> w(n);
  Rng rng{seed};
  float* p = w.data();
  const auto normal = [&](int64_t count) {
    fill_normal(p, static_cast<size_t>(count), stddev, rng);
    p += count;
  };
  const auto ones = [&](int64_t count) {
    std::fill(p, p + count, 1.0f);
    p += count;
  };
  normal(vocab * dim);                       // token embedding
  ones(layers * dim);                        // rms_att
  normal(layers * dim * dim);                // wq
  normal(2 * layers * kv_dim * dim);         // wk, wv
  normal(layers * dim * dim);                // wo
  ones(layers * dim);                        // rms_ffn
  normal(3 * layers * hidden * dim);         // w1, w2, w3
  ones(dim);                                 // rms_final
  std::fill(p, p + h.seq_len * head, 0.0f);  // unused RoPE tables
  p += h.seq_len * head;
  if (h.vocab_size < 0) normal(vocab * dim);  // wcls

  if (Status s = model::write_llama2c(out, h, w); !s.is_ok()) usage(s.to_string());
  std::printf("wrote %s (%.1f MB, dim %d, hidden %d, %d layers, %d heads, %d kv heads, vocab %d)\n",
              out.c_str(), static_cast<double>(n) * 4 / 1e6, h.dim, h.hidden_dim, h.n_layers,
              h.n_heads, h.n_kv_heads, h.vocab_size);
  if (!tok.empty()) {
    const fs::path dst =
        out.parent_path().empty() ? fs::path("tokenizer.bin") : out.parent_path() / "tokenizer.bin";
    std::error_code ec;
    if (!fs::equivalent(tok, dst, ec))
      fs::copy_file(tok, dst, fs::copy_options::overwrite_existing, ec);
    if (ec) usage("cannot copy the tokenizer to " + dst.string() + ": " + ec.message());
  }
  if (!gguf.empty()) {
    auto vocab_spec = model::load_llama2c_tokenizer(tok, static_cast<int>(vocab));
    if (!vocab_spec.has_value()) usage(vocab_spec.status().to_string());
    const Status s = model::write_llama2c_as_gguf(gguf, h, w, *vocab_spec, out.stem().string());
    if (!s.is_ok()) usage(s.to_string());
    std::printf("wrote %s (GGUF F32, same weights)\n", gguf.c_str());
  }
  return 0;
}
