// llama2.c checkpoints (Karpathy's `run.c` legacy format) and its `tokenizer.bin` vocabularies.
//
// Checkpoint: seven little-endian int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size, seq_len; a negative vocab_size means an unshared classifier), then f32 tensors in
// run.c's order: token_embedding [vocab][dim], rms_att [L][dim], wq [L][dim][dim],
// wk [L][kv_dim][dim], wv [L][kv_dim][dim], wo [L][dim][dim], rms_ffn [L][dim],
// w1 [L][hidden][dim], w2 [L][dim][hidden], w3 [L][hidden][dim], rms_final [dim], two unused
// RoPE tables of seq_len * head_size / 2 floats each, and wcls [vocab][dim] when unshared.
// run.c's model: Llama with RoPE over adjacent pairs (theta 10000) and RMSNorm eps 1e-5.
//
// Tokenizer: int32 max_token_length, then per token: f32 score, int32 length, bytes. Pieces have
// SentencePiece's "▁" written as a space; BOS/EOS (ids 1, 2) are written "\n<s>\n"/"\n</s>\n".
//
// Pure functions; the loaded Model is immutable afterwards like the other loaders'.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "common/status.h"
#include "model/mapped_file.h"
#include "model/model.h"

namespace turbine::model {

struct Llama2cHeader {
  int32_t dim = 0;
  int32_t hidden_dim = 0;
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t vocab_size = 0;  // negative: unshared classifier
  int32_t seq_len = 0;
};
inline constexpr size_t kLlama2cHeaderBytes = 7 * sizeof(int32_t);

// Number of f32 values after the header that a checkpoint with this header holds (0 when the
// header is inconsistent: non-positive sizes, dim not divisible by n_heads, ...).
uint64_t llama2c_weight_floats(const Llama2cHeader& h);

// Loads a checkpoint, memory-mapped. The vocabulary comes from `tokenizer.bin` in the same
// folder, else from the only `tok*.bin` there; with none the model has no vocabulary (model ""),
// with several `tok*.bin` and no tokenizer.bin it is an error.
Result<std::unique_ptr<Model>> load_llama2c(const std::filesystem::path& path,
                                            MappedFile::Mode mode = MappedFile::Mode::kMap);

// Parses a llama2.c tokenizer of exactly `n_vocab` tokens into a SentencePiece-score vocabulary
// (model "llama", token types, BOS 1, EOS 2, UNK 0 when the pieces say so). `name` is for errors.
Result<VocabSpec> parse_llama2c_tokenizer(std::span<const uint8_t> bytes, int n_vocab,
                                          const std::string& name);
Result<VocabSpec> load_llama2c_tokenizer(const std::filesystem::path& path, int n_vocab);

// The tokenizer file load_llama2c would use for a checkpoint (empty path: none).
Result<std::filesystem::path> find_llama2c_tokenizer(const std::filesystem::path& checkpoint);

// Writes a checkpoint: the header and `weights`, every f32 after it (llama2c_weight_floats(h)).
Status write_llama2c(const std::filesystem::path& path, const Llama2cHeader& h,
                     std::span<const float> weights);

// Writes the same weights as a GGUF F32 `llama` model that llama.cpp loads: Q/K rows kept as
// llama2.c has them (both rotate adjacent pairs, so no permutation), the shared classifier left
// out (llama.cpp then reuses token_embd), and `vocab` (n_vocab tokens, model "llama") as the
// SentencePiece tokenizer. Turbine loads both files to the same config, tensors and vocabulary
// (but the GGUF has no unshared-classifier flag to lose: an unshared wcls becomes output.weight).
Status write_llama2c_as_gguf(const std::filesystem::path& path, const Llama2cHeader& h,
                             std::span<const float> weights, const VocabSpec& vocab,
                             const std::string& name);

}  // namespace turbine::model
