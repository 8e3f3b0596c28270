// The entry point for serving: ConstraintSpec -> shared CompiledGrammar, through a bounded cache.
//
// One GrammarCompiler per served model (vocabulary). compile() is thread-safe: the cache is
// guarded by a mutex held only for lookups and inserts; compiling runs outside it, and concurrent
// requests for the same constraint wait for the one compile in flight. Errors are cached too, so a
// client repeating a bad schema costs a lookup.
#pragma once

#include <cstdint>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/status.h"
#include "structured/compiled_grammar.h"
#include "structured/constraint_spec.h"
#include "structured/grammar.h"
#include "structured/json_schema.h"
#include "structured/vocabulary.h"

namespace turbine::structured {

struct CompilerOptions {
  CompileLimits limits;
  JsonGrammarOptions json;
  size_t cache_entries = 512;            // compiled constraints kept (LRU)
  size_t cache_bytes = size_t{1} << 30;  // and their summed memory

  Status validate() const;
};

struct CompilerStats {
  uint64_t hits = 0;
  uint64_t misses = 0;  // compiles started
  uint64_t errors = 0;  // compiles that failed
  uint64_t evictions = 0;
  size_t entries = 0;
  size_t bytes = 0;
  double compile_seconds = 0;  // summed over misses
};

// The vocabulary-independent front end for one spec (kNone is an error). For tests and fuzzing.
Result<Grammar> constraint_to_grammar(const ConstraintSpec& spec, const CompilerOptions& options);

class GrammarCompiler {
 public:
  GrammarCompiler(std::shared_ptr<const Vocabulary> vocab, CompilerOptions options = {});

  // kInvalidArgument for a bad constraint: the message says what is wrong and where (the caller
  // adds the request field as `param`).
  Result<std::shared_ptr<const CompiledGrammar>> compile(const ConstraintSpec& spec);
  // Whether compile(spec) would answer at once, without compiling or waiting: the spec is cached
  // (a grammar or an error) or is refused before compiling. A spec compiling elsewhere is not.
  // Lets a caller on an I/O thread send cold compiles to a worker pool (engine/engine.h).
  bool ready(const ConstraintSpec& spec) const;

  CompilerStats stats() const;
  const Vocabulary& vocab() const { return *vocab_; }
  const std::shared_ptr<const Vocabulary>& vocab_ptr() const { return vocab_; }

 private:
  using Value = Result<std::shared_ptr<const CompiledGrammar>>;
  struct Entry {
    std::list<std::string>::iterator lru;
    Value value;
    size_t bytes;
  };
  void insert_locked(const std::string& key, const Value& value);

  const std::shared_ptr<const Vocabulary> vocab_;
  const CompilerOptions options_;
  mutable std::mutex mu_;       // guards everything below
  std::list<std::string> lru_;  // most recent first
  std::unordered_map<std::string, Entry> cache_;
  std::unordered_map<std::string, std::shared_future<Value>> in_flight_;
  CompilerStats stats_;
};

}  // namespace turbine::structured
