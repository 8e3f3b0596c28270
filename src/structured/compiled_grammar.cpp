#include "structured/compiled_grammar.h"

namespace turbine::structured {

Result<std::shared_ptr<const CompiledGrammar>> CompiledGrammar::compile(
    const Grammar& grammar, std::shared_ptr<const Vocabulary> vocab, const CompileLimits& limits) {
  if (vocab == nullptr) return invalid_argument("no vocabulary to compile the constraint against");
  TURBINE_ASSIGN_OR_RETURN(Automaton a, build_automaton(grammar, limits));
  TURBINE_ASSIGN_OR_RETURN(TokenMaskCache c, TokenMaskCache::build(a, *vocab, limits));
  return std::shared_ptr<const CompiledGrammar>(
      new CompiledGrammar(std::move(a), std::move(vocab), std::move(c)));
}

}  // namespace turbine::structured
