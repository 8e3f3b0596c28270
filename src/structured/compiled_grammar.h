// A grammar compiled against one vocabulary: the automaton plus its token-mask cache. Immutable
// and shared (shared_ptr<const>) by every Matcher of every request that uses the constraint, on
// any thread.
#pragma once

#include <memory>

#include "common/status.h"
#include "structured/automaton.h"
#include "structured/grammar.h"
#include "structured/token_mask_cache.h"
#include "structured/vocabulary.h"

namespace turbine::structured {

class CompiledGrammar {
 public:
  static Result<std::shared_ptr<const CompiledGrammar>> compile(
      const Grammar& grammar, std::shared_ptr<const Vocabulary> vocab, const CompileLimits& limits);

  const Automaton& automaton() const { return automaton_; }
  const Vocabulary& vocab() const { return *vocab_; }
  const TokenMaskCache& mask_cache() const { return cache_; }
  size_t memory_bytes() const { return automaton_.memory_bytes() + cache_.stats().memory_bytes; }

 private:
  CompiledGrammar(Automaton a, std::shared_ptr<const Vocabulary> v, TokenMaskCache c)
      : automaton_(std::move(a)), vocab_(std::move(v)), cache_(std::move(c)) {}

  Automaton automaton_;
  std::shared_ptr<const Vocabulary> vocab_;
  TokenMaskCache cache_;
};

}  // namespace turbine::structured
