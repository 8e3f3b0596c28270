// Streaming token -> text conversion with stop strings, one instance per generated sequence.
//
// Each push() returns only text that is final: it never ends inside a UTF-8 sequence (an
// incomplete tail is held until the next token; bytes that can never complete become U+FFFD) and
// never ends with something that could be the start of a stop string (the longest such suffix is
// held until a later token settles it). Work per token is proportional to the token's bytes plus
// the stop strings' lengths, never to the length of the sequence so far.
//
// Thread ownership: not thread-safe; the frontend request that creates it owns it and calls it
// from one thread at a time. It keeps a reference to the Tokenizer, which must outlive it (the
// tokenizer lives as long as the served model).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace turbine::tokenizer {

class IncrementalDetokenizer {
 public:
  struct Delta {
    std::string text;      // newly final text, possibly empty
    bool stopped = false;  // a stop string completed; `text` ends right before it
  };

  // `prev_token`: the last prompt token (-1 for none); a first generated piece that follows BOS
  // (or nothing) drops its leading space, as in Tokenizer::token_text. Empty stop strings are
  // ignored; ill-formed UTF-8 in a stop string is matched as U+FFFD. `keep_special`: special
  // tokens written as their piece even with `skip_special` (markup an output parser reads, such
  // as <|python_tag|> or [TOOL_CALLS]); sorted.
  IncrementalDetokenizer(const Tokenizer& tokenizer, int32_t prev_token,
                         std::vector<std::string> stop_strings, bool skip_special,
                         std::vector<int32_t> keep_special = {});

  // Feeds one generated token. After a stop, further calls return {"", true}.
  Delta push(int32_t token);
  // End of generation: releases everything held back (an incomplete UTF-8 tail becomes U+FFFD).
  // Returns "" once stopped or already flushed. A stop string completed only by the final U+FFFD
  // still stops (then only the text before it is returned and stopped() becomes true).
  std::string flush();

  // Everything returned so far by push() and flush(), concatenated.
  const std::string& text() const { return text_; }
  bool stopped() const { return stopped_; }
  // The stop string that ended the text (the one found first; "" until stopped).
  const std::string& matched_stop() const { return matched_stop_; }

 private:
  // Moves the final part of held_ to the result; `at_end` releases it all (nothing follows).
  Delta release(bool at_end);

  const Tokenizer& tokenizer_;
  int32_t prev_token_;
  std::vector<std::string> stops_;
  bool skip_special_;
  std::vector<int32_t> keep_special_;  // sorted
  std::string matched_stop_;
  std::string pending_bytes_;  // incomplete UTF-8 tail (at most 3 bytes)
  std::string held_;           // valid UTF-8 not yet released; never contains a whole stop string
  std::string text_;
  bool stopped_ = false;
  bool flushed_ = false;
};

}  // namespace turbine::tokenizer
