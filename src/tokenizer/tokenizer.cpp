#include "tokenizer/tokenizer.h"

#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/pipeline_tokenizer.h"
#include "tokenizer/spm_tokenizer.h"

namespace turbine::tokenizer {

Result<std::unique_ptr<Tokenizer>> make_tokenizer(const model::VocabSpec& vocab) {
  if (vocab.model == "llama") {
    TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<SpmTokenizer> spm, SpmTokenizer::create(vocab));
    return std::unique_ptr<Tokenizer>(std::move(spm));
  }
  if (vocab.model == "hf") {
    if (vocab.tokenizer_json.empty()) {
      return invalid_argument("the model folder has no tokenizer.json", "tokenizer_json");
    }
    auto hf = HfTokenizer::from_files(vocab.tokenizer_json, vocab.tokenizer_config);
    if (!hf.has_value() && hf.status().code() == StatusCode::kUnimplemented &&
        hf.status().field() == "model.type") {
      // WordPiece and Unigram vocabularies (encoder models).
      TURBINE_ASSIGN_OR_RETURN(
          std::unique_ptr<PipelineTokenizer> p,
          PipelineTokenizer::from_files(vocab.tokenizer_json, vocab.tokenizer_config));
      return std::unique_ptr<Tokenizer>(std::move(p));
    }
    if (!hf.has_value()) return hf.status();
    return std::unique_ptr<Tokenizer>(std::move(hf).value());
  }
  if (vocab.model == "gpt2") {
    TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<HfTokenizer> hf, HfTokenizer::from_gguf_vocab(vocab));
    return std::unique_ptr<Tokenizer>(std::move(hf));
  }
  return unimplemented("unknown tokenizer model '" + vocab.model + "'", "tokenizer.ggml.model");
}

}  // namespace turbine::tokenizer
