#include "encoder/decoder_embed_backend.h"

#include <algorithm>

#include "engine/backend.h"

namespace turbine::encoder {
namespace {

constexpr int kBlockSize = 16;

class DecoderEmbedBackend final : public EncoderBackend {
 public:
  DecoderEmbedBackend(const model::Model& model, std::unique_ptr<engine::Backend> backend,
                      int max_tokens)
      : model_(model), backend_(std::move(backend)), max_tokens_(max_tokens) {}

  std::string_view name() const override { return "decoder"; }
  int hidden_dim() const override { return model_.config().dim; }
  int max_tokens() const override { return max_tokens_; }

  Status forward(const EncoderBatch& batch, std::vector<float>& out) override {
    TURBINE_RETURN_IF_ERROR(validate_batch(batch, model_.config().n_vocab, max_tokens(), 1));
    for (Output o : batch.outputs) {
      if (o != Output::kLastToken)
        return invalid_argument(
            std::string("decoder embedders pool on the last token, not ") + output_name(o),
            "pooling");
    }
    const auto d = static_cast<size_t>(hidden_dim());
    out.resize(batch.n_seqs() * d);
    // As many sequences per step as the arena's blocks hold.
    size_t s = 0;
    while (s < batch.n_seqs()) {
      std::vector<std::vector<int32_t>> tables;
      std::vector<engine::SeqChunk> chunks;
      int next_block = 0;
      const size_t first = s;
      for (; s < batch.n_seqs(); ++s) {
        const int len = batch.seq_begin[s + 1] - batch.seq_begin[s];
        const int blocks = (len + kBlockSize - 1) / kBlockSize;
        if (next_block + blocks > backend_->num_blocks() && s > first) break;
        if (next_block + blocks > backend_->num_blocks())
          return invalid_argument("input is longer than the embedder's KV arena", "input");
        std::vector<int32_t> table(static_cast<size_t>(blocks));
        for (int b = 0; b < blocks; ++b) table[static_cast<size_t>(b)] = next_block++;
        tables.push_back(std::move(table));
      }
      for (size_t k = first; k < s; ++k) {
        engine::SeqChunk ch;
        ch.block_table = tables[k - first];
        ch.pos = 0;
        ch.tokens = std::span<const int32_t>(
            batch.ids.data() + batch.seq_begin[k],
            static_cast<size_t>(batch.seq_begin[k + 1] - batch.seq_begin[k]));
        ch.want_logits = true;
        chunks.push_back(ch);
      }
      TURBINE_RETURN_IF_ERROR(backend_->forward_hidden(chunks, hidden_));
      std::copy(hidden_.begin(), hidden_.end(),
                out.begin() + static_cast<std::ptrdiff_t>(first * d));
    }
    return Status::ok();
  }

 private:
  const model::Model& model_;
  std::unique_ptr<engine::Backend> backend_;
  const int max_tokens_;
  std::vector<float> hidden_;
};

}  // namespace

Result<std::unique_ptr<EncoderBackend>> make_decoder_embed_backend(const model::Model& model,
                                                                   int n_threads,
                                                                   int max_batch_tokens) {
  engine::CpuBackendOptions o;
  o.n_threads = n_threads;
  o.block_size = kBlockSize;
  o.max_num_seqs = 1;
  if (max_batch_tokens <= 0)
    return invalid_argument("max_batch_tokens must be positive", "max_batch_tokens");
  // The arena holds one batch (whole blocks per sequence); a longer input is refused.
  const int max_tokens = std::min(model.config().max_context, max_batch_tokens);
  const int64_t tokens = int64_t{max_batch_tokens} + kBlockSize * 64;
  o.kv_cache_memory_bytes = engine::cpu_kv_bytes_per_token(model.config()) * tokens;
  TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<engine::Backend> backend,
                           engine::make_cpu_backend(model, o));
  return std::unique_ptr<EncoderBackend>(
      std::make_unique<DecoderEmbedBackend>(model, std::move(backend), max_tokens));
}

}  // namespace turbine::encoder
