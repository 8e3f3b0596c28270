// Hugging Face tokenizer.json tokenizers (BPE model), matching the `tokenizers` library token for
// token (the parity test compares against tokenizers.js over a multilingual corpus):
//   1. the text is split on added tokens (leftmost-longest; lstrip/rstrip trim the neighbouring
//      text); special and non-special added tokens in the text become their ids;
//   2. each remaining section is normalized, then split on the added tokens whose `normalized`
//      flag asks to match after normalization;
//   3. pre-tokenized into words, and each word BPE-encoded (cached per word);
//   4. with `add_special`, the post-processor's tokens (TemplateProcessing BOS/EOS, Roberta/Bert
//      CLS/SEP) are added — tokenizer.json decides, as in tokenizers.js; tokenizer_config.json
//      only names the BOS/EOS tokens and extra special tokens.
// Ill-formed UTF-8 input is read as if each maximal ill-formed subsequence were U+FFFD.
// decode() does not apply transformers' clean_up_tokenization_spaces (it is lossy).
//
// GGUF "gpt2" vocabularies (tokens + merges + token types + tokenizer.ggml.pre) are turned into
// the equivalent tokenizer.json and loaded the same way.
//
// Immutable after creation (except the BPE word cache, see bpe_model.h); all methods are const
// and safe from any thread.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "model/model.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/hf_normalizer.h"
#include "tokenizer/hf_pre_tokenizer.h"
#include "tokenizer/hf_tokenizer_base.h"

namespace turbine::tokenizer {

class HfTokenizer final : public HfTokenizerBase {
 public:
  // `tokenizer_config_json` may be empty. Errors: kInvalidArgument for malformed JSON or fields
  // (naming the field), kUnimplemented for components not supported (naming the type).
  static Result<std::unique_ptr<HfTokenizer>> from_json(std::string_view tokenizer_json,
                                                        std::string_view tokenizer_config_json);
  // `tokenizer_config` may be empty (no file).
  static Result<std::unique_ptr<HfTokenizer>> from_files(
      const std::filesystem::path& tokenizer_json, const std::filesystem::path& tokenizer_config);
  // A GGUF "gpt2" vocabulary.
  static Result<std::unique_ptr<HfTokenizer>> from_gguf_vocab(const model::VocabSpec& vocab);

  ~HfTokenizer() override;

  std::vector<int32_t> encode(std::string_view text, bool add_special) const override;
  std::string token_bytes(int32_t id) const override;
  // The first token of a text (prev_id < 0; skipped special tokens do not count, see
  // skipped_specials_are_invisible) loses the leading spaces the decoder strips at the start
  // (llama2's Strip after Fuse, Metaspace).
  std::string token_text(int32_t prev_id, int32_t id, bool skip_special) const override;

 private:
  struct Section {
    std::string_view text;
    int32_t added = -1;  // index into added_, or -1 for text
  };

  HfTokenizer();
  static Result<std::unique_ptr<HfTokenizer>> build(const nlohmann::json& tokenizer,
                                                    const nlohmann::json& config);
  void split_added(std::string_view text, const AddedTokenTrie& trie,
                   std::vector<Section>& out) const;
  int32_t model_token_id(std::string_view token) const override;

  HfNormalizer normalizer_;
  HfPreTokenizer pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::vector<int32_t> prefix_ids_;  // added by add_special before the text
  std::vector<int32_t> suffix_ids_;  // and after it
};

}  // namespace turbine::tokenizer
