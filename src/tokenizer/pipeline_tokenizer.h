// A Hugging Face tokenizer.json run as the Rust `tokenizers` crate runs it, with what encoder
// models need beyond ids: offsets of every token in the input, text pairs with type ids
// (TemplateProcessing / BertProcessing / RobertaProcessing), and truncation.
//
//   1. added tokens are split out of the original text (leftmost-longest; lstrip/rstrip take the
//      neighbouring whitespace into the token's span);
//   2. each remaining section is normalized with alignment (aligned_normalizer.h), then split on
//      the added tokens matched after normalization;
//   3. pre-tokenized into words with alignment (aligned_pre_tokenizer.h);
//   4. each word is encoded by the model: WordPiece, Unigram (subword_models.h) or BPE
//      (bpe_model.h), and each token's span in the word is mapped back to the input;
//   5. truncated longest-first when asked, then the post-processor adds special tokens and type
//      ids (ByteLevel / Roberta trim_offsets trims spaces off offsets).
//
// make_tokenizer() builds one for tokenizer.json files whose model is WordPiece or Unigram (the
// BPE path there stays HfTokenizer); encoder models use it for every model type.
//
// Immutable after creation; all methods are const and safe from any thread.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "tokenizer/aligned_normalizer.h"
#include "tokenizer/aligned_pre_tokenizer.h"
#include "tokenizer/aligned_text.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/hf_tokenizer_base.h"
#include "tokenizer/subword_models.h"

namespace turbine::tokenizer {

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;
  // Byte offsets into the text the token came from (the pair's tokens: into the pair text);
  // {0, 0} for special tokens the post-processor added.
  std::vector<ByteSpan> offsets;
  // 0: first text, 1: pair text, -1: added by the post-processor.
  std::vector<int8_t> sequence_ids;
  size_t size() const { return ids.size(); }
};

struct EncodeOptions {
  bool add_special = true;
  // 0: no limit. Otherwise the texts' tokens are cut from the right, longest text first, so
  // that the result (special tokens included) has at most max_length tokens.
  size_t max_length = 0;
};

class PipelineTokenizer final : public HfTokenizerBase {
 public:
  // Errors: kInvalidArgument for malformed JSON or fields (naming the field), kUnimplemented for
  // components not supported (naming the type).
  static Result<std::unique_ptr<PipelineTokenizer>> from_json(std::string_view tokenizer_json,
                                                              std::string_view tokenizer_config);
  // `tokenizer_config` may be empty (no file).
  static Result<std::unique_ptr<PipelineTokenizer>> from_files(
      const std::filesystem::path& tokenizer_json, const std::filesystem::path& tokenizer_config);
  ~PipelineTokenizer() override;

  // Ill-formed UTF-8 is read as U+FFFD per maximal ill-formed subsequence; offsets then refer to
  // the sanitized text (identical for well-formed input).
  Encoding encode(std::string_view text, std::optional<std::string_view> pair,
                  const EncodeOptions& options) const;
  // Special tokens the post-processor adds to one text or to a pair.
  size_t num_special_tokens(bool pair) const;

  // Tokenizer interface.
  std::vector<int32_t> encode(std::string_view text, bool add_special) const override;
  std::string token_bytes(int32_t id) const override;
  std::string token_text(int32_t prev_id, int32_t id, bool skip_special) const override;

  // "WordPiece", "Unigram" or "BPE".
  const std::string& model_type() const { return model_type_; }

 private:
  // One post-processor template item: a text (seq 0 or 1) or special token ids.
  struct TemplateItem {
    int seq = -1;  // 0, 1, or -1 for special tokens
    std::vector<int32_t> ids;
    int32_t type_id = 0;
  };
  struct Token {
    int32_t id;
    ByteSpan span;
  };

  PipelineTokenizer();
  static Result<std::unique_ptr<PipelineTokenizer>> build(const nlohmann::json& tokenizer,
                                                          const nlohmann::json& config);
  Status parse_post_processor(const nlohmann::json& post);
  // Tokens of one text, offsets into it.
  void encode_sequence(std::string_view text, std::vector<Token>& out) const;
  void encode_words(AlignedText section, std::vector<Token>& out) const;
  void trim_offsets(std::vector<Token>& tokens) const;
  int32_t model_token_id(std::string_view token) const override;

  std::string model_type_;
  AlignedNormalizer normalizer_;
  AlignedPreTokenizer pre_tokenizer_;
  std::unique_ptr<SubwordModel> subword_;  // WordPiece / Unigram
  std::unique_ptr<BpeModel> bpe_;          // BPE
  std::string bpe_prefix_, bpe_suffix_;
  bool wordpiece_decoder_ = false;  // the decoder is WordPiece (handled here; texts_ unused)
  std::string wordpiece_prefix_ = "##";
  bool wordpiece_cleanup_ = true;
  std::vector<TemplateItem> single_, pair_;
  bool trim_offsets_ = false;
  bool trim_add_prefix_space_ = false;
};

// Code-point offsets of `offsets` (bytes into well-formed UTF-8 `text`), as Python's str
// indexes it.
std::vector<ByteSpan> to_char_offsets(std::string_view text, const std::vector<ByteSpan>& offsets);

}  // namespace turbine::tokenizer
