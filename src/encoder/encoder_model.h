// A loaded encoder model: config, tokenizer (PipelineTokenizer: offsets, pairs), pooling as
// sentence-transformers configures it, heads, and the weights: mapped safetensors for BERT /
// RoBERTa / ModernBERT, or a model::Model for decoders used as embedders (run through the
// engine's decoder backend).
//
// Loaded once, immutable afterwards; any thread may read it. Backends made from it must not
// outlive it.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "common/status.h"
#include "encoder/async_encoder.h"
#include "encoder/encoder_backend.h"
#include "encoder/encoder_config.h"
#include "encoder/encoder_weights.h"
#include "encoder/heads.h"
#include "encoder/pooling.h"
#include "model/model.h"
#include "tokenizer/pipeline_tokenizer.h"

namespace turbine::encoder {

class EncoderModel {
 public:
  // `dir`: a Hugging Face folder (config.json, model.safetensors or shards, tokenizer.json, and
  // for sentence-transformers models modules.json + the Pooling module's folder).
  static Result<std::unique_ptr<EncoderModel>> load(const std::filesystem::path& dir);

  const EncoderConfig& config() const { return config_; }
  EncoderTask task() const { return task_; }
  const PoolingConfig& pooling() const { return pooling_; }
  const tokenizer::PipelineTokenizer& tokenizer() const { return *tokenizer_; }
  const Heads& heads() const { return heads_; }
  // Present for BERT / RoBERTa / ModernBERT.
  const EncoderWeights* weights() const { return files_ ? &files_->weights() : nullptr; }
  // Present for decoder embedders.
  const model::Model* decoder() const { return decoder_.get(); }
  // Width of the vectors embed() returns.
  int hidden_dim() const { return config_.dim; }
  // Longest input in tokens (special tokens included): the positions, and sentence-transformers'
  // max_seq_length when it is smaller.
  int max_tokens() const;
  const std::string& name() const { return name_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  EncoderModel() = default;

  EncoderConfig config_;
  EncoderTask task_ = EncoderTask::kEmbedding;
  PoolingConfig pooling_;
  std::unique_ptr<tokenizer::PipelineTokenizer> tokenizer_;
  std::unique_ptr<EncoderWeightFiles> files_;
  std::unique_ptr<model::Model> decoder_;
  Heads heads_;
  std::string name_;
  std::filesystem::path path_;
};

// Whether `dir` holds a model to serve as an encoder: a Hugging Face folder whose config.json
// names an encoder architecture (BERT, RoBERTa / XLM-R, ModernBERT), or a sentence-transformers
// folder (modules.json) of a decoder embedder such as Qwen3-Embedding. GGUF files, folders of
// generative models and anything unreadable: false (they load as decoders, which then explain
// what is wrong).
bool is_encoder_folder(const std::filesystem::path& dir);

struct EncoderBackendOptions {
  int n_threads = 0;            // CPU threads, 0: all
  int max_batch_tokens = 8192;  // decoder embedders size their KV arena for this many tokens
};

// The backend for `model` on this machine (CPU now; the CUDA encoder path slots in here).
Result<std::unique_ptr<EncoderBackend>> make_encoder_backend(const EncoderModel& model,
                                                             const EncoderBackendOptions& options);

}  // namespace turbine::encoder
