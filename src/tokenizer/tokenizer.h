// Text <-> token IDs, owned by the frontend (workers see only token IDs).
//
// Immutable after construction; encode/decode are safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "model/model.h"

namespace turbine::tokenizer {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // `add_special`: prepend BOS (and append EOS) as the vocabulary asks.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special) const = 0;
  // Bytes of one token as it appears in decoded text (byte tokens give their raw byte; the
  // SentencePiece space marker becomes ' '). Control tokens give "".
  virtual std::string token_bytes(int32_t id) const = 0;
  // Decodes a whole sequence (leading space of the first piece stripped, as SentencePiece does).
  // The result may hold ill-formed UTF-8 from byte tokens; sanitize_utf8() (tokenizer/utf8.h)
  // before it goes into JSON.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  virtual bool is_special(int32_t id) const = 0;
  // The token's piece as stored in the vocabulary ("▁the", "<0x0A>"), for /tokenize and logprobs.
  virtual std::string piece(int32_t id) const = 0;

  // Bytes `id` contributes to streamed text when it follows `prev_id` (-1: nothing before it).
  // Control tokens give "" with `skip_special`, else their piece. SentencePiece vocabularies drop
  // the leading space of a piece that follows BOS or starts the text (the dummy prefix that
  // encode() added); decode() and IncrementalDetokenizer both go through this, so streamed and
  // whole-sequence text agree. May be an incomplete UTF-8 sequence (byte tokens).
  virtual std::string token_text(int32_t prev_id, int32_t id, bool skip_special) const {
    if (is_special(id)) return skip_special ? std::string() : piece(id);
    return token_bytes(id);
  }

  // With skip_special, whether a skipped special token is invisible to the next token's
  // `prev_id` (the caller passes the last token that was not skipped, -1 if none). Hugging Face
  // decoders drop skipped tokens before decoding, so "the first token of the text" is the first
  // one not skipped; llama2.c-style SentencePiece decoding looks at the raw previous id.
  virtual bool skipped_specials_are_invisible() const { return false; }
};

// Builds the tokenizer the vocabulary describes: "llama" (SentencePiece with scores, as in GGUF),
// "gpt2" (GGUF byte-level BPE) and "hf" (tokenizer.json + tokenizer_config.json). A malformed
// vocabulary gives kInvalidArgument naming the field; unsupported components kUnimplemented.
Result<std::unique_ptr<Tokenizer>> make_tokenizer(const model::VocabSpec& vocab);

}  // namespace turbine::tokenizer
