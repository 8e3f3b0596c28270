// One GrammarCompiler per distinct vocabulary in the process: the frontend and the in-process
// engines of one model get the same compiler, so a constraint the frontend compiled (on its
// preprocessing pool, to answer a bad one with a 400) is a cache hit when the engine needs it.
// Separate processes (a remote worker) compile from the spec that travelled over the wire.
//
// Threads: safe from any thread (one mutex around the map; building a vocabulary runs outside it).
#pragma once

#include <memory>

#include "common/status.h"
#include "structured/compiler.h"
#include "structured/vocabulary.h"

namespace turbine::tokenizer {
class Tokenizer;
}

namespace turbine::structured {

// The compiler for this tokenizer's vocabulary under `options` (keyed by a hash of every token's
// bytes, the special ids, the stop ids and the mask size); built on first use and kept while
// anyone holds it.
Result<std::shared_ptr<GrammarCompiler>> shared_compiler(const tokenizer::Tokenizer& tok,
                                                         const VocabularyOptions& options = {});

// The same for a model whose logits have `n_vocab` rows (masks cover them all; ids past the
// tokenizer's vocabulary are never allowed): what the frontend and the engines call, so that
// they agree on the key.
Result<std::shared_ptr<GrammarCompiler>> shared_compiler_for_model(const tokenizer::Tokenizer& tok,
                                                                   int32_t n_vocab);

}  // namespace turbine::structured
