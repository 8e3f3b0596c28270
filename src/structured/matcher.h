// Per-sequence matching of a compiled grammar: the allowed-token bitmask for the next step, and
// advancing by the sampled token. Stop (EOS) ids are allowed only where the output may end;
// special tokens never.
//
// Cheap to create (no precomputation: everything vocabulary-sized lives in the shared
// CompiledGrammar). Single-threaded: one sequence's matcher is used by one thread at a time
// (e.g. a CPU mask thread for step t, then the engine thread to accept step t's token).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "structured/compiled_grammar.h"
#include "structured/pda.h"

namespace turbine::structured {

class Matcher {
 public:
  explicit Matcher(std::shared_ptr<const CompiledGrammar> grammar);

  // Words in a mask: ceil(vocab mask size / 32). Bit (id % 32) of word (id / 32) set = allowed.
  size_t mask_words() const { return grammar_->vocab().mask_words(); }
  // Writes all mask_words() words. After termination only the stop ids are set.
  void fill_next_token_bitmask(uint32_t* words);
  // The same mask computed without the token-mask cache, by walking the whole vocabulary trie
  // from the live stacks: the reference that tests and the bench compare against (milliseconds).
  void fill_next_token_bitmask_reference(uint32_t* words);

  // Advances by one sampled token; false (state unchanged) if the token is not allowed.
  bool accept_token(int32_t id);
  // Replays tokens (preemption recomputation, migration to another worker). On the first token
  // that does not match: kInvalidArgument naming its position; the tokens before it stay
  // accepted.
  Status accept_tokens(std::span<const int32_t> ids);
  // Advances by raw bytes (tests, forced continuations); false (unchanged) if they do not match.
  bool accept_bytes(std::string_view bytes);

  // The output so far is complete: a stop token is allowed now.
  bool can_terminate() const;
  // A stop token was accepted, or nothing but a stop token can follow.
  bool is_terminated() const;
  // Back to the start of the grammar.
  void reset();
  // Undoes the last `n` accepted tokens (speculative decoding); false if fewer were accepted.
  bool rollback(size_t n);
  size_t num_accepted() const { return history_.size() - 1; }
  // Fewest bytes that complete the output from here (0 when complete): lets a caller steer or
  // force a finish.
  int64_t min_completion_bytes() const;
  // One shortest byte string that completes the output from here (empty when complete), cut at
  // `max_bytes`: for forcing a finish (a length limit) or steering tests.
  std::string completion_bytes(size_t max_bytes) const;

 private:
  bool advance(std::string_view bytes, Config& out);
  void check_uncertain(const Top& top, const MaskEntry& e, uint32_t* words);

  std::shared_ptr<const CompiledGrammar> grammar_;
  StackPool pool_;
  Pda pda_;
  struct Step {
    Config cfg;
    bool terminated = false;
  };
  std::vector<Step> history_;  // history_[0]: before any token
  // Scratch, reused across calls.
  std::vector<Config> scratch_;
  std::vector<int32_t> applied_entries_;
};

}  // namespace turbine::structured
