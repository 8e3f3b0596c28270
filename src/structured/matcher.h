// Per-sequence matching of a compiled grammar: the allowed-token bitmask for the next step, and
// advancing by the sampled token. Stop (EOS) ids are allowed only where the output may end;
// special tokens never.
//
// Cheap to create (no precomputation: everything vocabulary-sized lives in the shared
// CompiledGrammar). Single-threaded: one sequence's matcher is used by one thread at a time
// (e.g. a CPU mask thread for step t, then the engine thread to accept step t's token).
//
// Reasoning models (ConstraintSpec::start, a StartTrigger): the grammar starts after the
// reasoning block ends. Until then the matcher is in another phase (phase()): the tokens are
// accepted (and counted, replayed and rolled back like any) but advance nothing; the trigger's own
// tokens are free too, and the grammar starts from its initial state at the next token.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "structured/compiled_grammar.h"
#include "structured/constraint_spec.h"
#include "structured/pda.h"

namespace turbine::structured {

class Matcher {
 public:
  enum class Phase : uint8_t {
    kMayOpen,    // nothing generated yet and start.open set: the grammar's tokens or start.open[0]
    kOpening,    // inside start.open: only its next id
    kReasoning,  // inside the reasoning block: anything, until start.end has been generated
    kGrammar,    // the grammar applies
  };

  // `start`: where the grammar starts (default: at once). Its ids must lie in the vocabulary's
  // mask (check_start_trigger).
  explicit Matcher(std::shared_ptr<const CompiledGrammar> grammar, StartTrigger start = {});
  // The automaton refers to this object's own stack storage: a copy or a move would leave it
  // pointing at the old object. Hold matchers by pointer (the engine keeps a unique_ptr).
  Matcher(const Matcher&) = delete;
  Matcher& operator=(const Matcher&) = delete;

  Phase phase() const { return phase_; }
  // Whether the next token is masked at all: false only inside the reasoning block, where the
  // caller may sample without a mask (fill_next_token_bitmask would allow every id).
  bool masks_next() const { return phase_ != Phase::kReasoning; }

  // Words in a mask: ceil(vocab mask size / 32). Bit (id % 32) of word (id / 32) set = allowed.
  size_t mask_words() const { return grammar_->vocab().mask_words(); }
  // Writes all mask_words() words. After termination only the stop ids are set. Before the grammar
  // starts: every id inside the reasoning block, start.open's next id while opening, and the
  // grammar's first tokens plus start.open[0] while the output may open a block.
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

  // The output so far is complete: a stop token is allowed now (inside the reasoning block, as
  // without a constraint).
  bool can_terminate() const;
  // A stop token was accepted, or nothing but a stop token can follow.
  bool is_terminated() const;
  // Back to the start (of the reasoning too, when there is a trigger).
  void reset();
  // Undoes the last `n` accepted tokens (speculative decoding); false if fewer were accepted.
  bool rollback(size_t n);
  // Every accepted token, those before the grammar started included.
  size_t num_accepted() const { return gate_tokens_.size() + history_.size() - 1; }
  // Fewest bytes that complete the output from here (0 when complete): lets a caller steer or
  // force a finish. Before the grammar starts: what it will need once it does.
  int64_t min_completion_bytes() const;
  // One shortest byte string that completes the output from here (empty when complete), cut at
  // `max_bytes`: for forcing a finish (a length limit) or steering tests.
  std::string completion_bytes(size_t max_bytes) const;

 private:
  bool advance(std::string_view bytes, Config& out);
  void fill_grammar_mask(uint32_t* words);
  bool accept_grammar_token(int32_t id);
  // phase_ from gate_tokens_ and the grammar's history.
  void update_phase();
  void check_uncertain(const Top& top, const MaskEntry& e, uint32_t* words);

  std::shared_ptr<const CompiledGrammar> grammar_;
  StackPool pool_;
  Pda pda_;
  struct Step {
    Config cfg;
    bool terminated = false;
  };
  std::vector<Step> history_;  // history_[0]: before the grammar's first token
  const StartTrigger start_;
  std::vector<int32_t> gate_tokens_;  // the tokens before the grammar started (all precede it)
  Phase phase_ = Phase::kGrammar;
  // Scratch, reused across calls.
  std::vector<Config> scratch_;
  std::vector<int32_t> applied_entries_;
};

// kInvalidArgument unless `start`'s ids lie in [0, vocab.size()) and each marker has at most
// kMaxTriggerIds ids (an `open` needs an `end`).
Status check_start_trigger(const StartTrigger& start, const Vocabulary& vocab);

}  // namespace turbine::structured
