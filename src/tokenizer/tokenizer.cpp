#include "tokenizer/tokenizer.h"

#include "tokenizer/spm_tokenizer.h"

namespace turbine::tokenizer {

Result<std::unique_ptr<Tokenizer>> make_tokenizer(const model::VocabSpec& vocab) {
  if (vocab.model == "llama") {
    TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<SpmTokenizer> spm, SpmTokenizer::create(vocab));
    return std::unique_ptr<Tokenizer>(std::move(spm));
  }
  if (vocab.model == "gpt2" || vocab.model == "hf") {
    return unimplemented(
        "tokenizer model '" + vocab.model +
            "' (byte-level BPE / tokenizer.json) is not implemented yet; only SentencePiece "
            "'llama' vocabularies are supported",
        "tokenizer.ggml.model");
  }
  return unimplemented("unknown tokenizer model '" + vocab.model + "'", "tokenizer.ggml.model");
}

}  // namespace turbine::tokenizer
