#include "structured/compiler.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "structured/ebnf.h"
#include "structured/regex.h"

namespace turbine::structured {
namespace {

// The cache key: the kind and a canonical text (JSON re-serialized without insignificant
// whitespace, keeping key order: property order is part of a schema's meaning here).
Result<std::string> cache_key(const ConstraintSpec& spec, const CompileLimits& limits) {
  std::string key = constraint_kind_name(spec.kind);
  key.push_back('\0');
  switch (spec.kind) {
    case ConstraintSpec::Kind::kJsonSchema:
    case ConstraintSpec::Kind::kChoice: {
      if (spec.text.size() > limits.max_input_bytes) return key + spec.text;  // fails later
      auto doc = nlohmann::ordered_json::parse(spec.text, nullptr, /*allow_exceptions=*/false);
      if (doc.is_discarded()) return key + spec.text;  // the front end reports where
      return key + doc.dump();
    }
    case ConstraintSpec::Kind::kJsonObject: return key;
    default: return key + spec.text;
  }
}

}  // namespace

Status CompilerOptions::validate() const {
  TURBINE_RETURN_IF_ERROR(limits.validate());
  if (json.max_whitespace < 0) return invalid_argument("max_whitespace must be >= 0");
  if (cache_entries == 0) return invalid_argument("the grammar cache needs at least one entry");
  return Status::ok();
}

Result<Grammar> constraint_to_grammar(const ConstraintSpec& spec, const CompilerOptions& options) {
  switch (spec.kind) {
    case ConstraintSpec::Kind::kJsonSchema:
      return json_schema_to_grammar(spec.text, options.json, options.limits);
    case ConstraintSpec::Kind::kJsonObject:
      return json_object_grammar(options.json, options.limits);
    case ConstraintSpec::Kind::kRegex: return regex_to_grammar(spec.text, options.limits);
    case ConstraintSpec::Kind::kChoice: return choice_to_grammar(spec.text, options.limits);
    case ConstraintSpec::Kind::kGrammar: return ebnf_to_grammar(spec.text, options.limits);
    case ConstraintSpec::Kind::kNone: break;
  }
  return invalid_argument("no constraint to compile");
}

GrammarCompiler::GrammarCompiler(std::shared_ptr<const Vocabulary> vocab, CompilerOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)) {}

Result<std::shared_ptr<const CompiledGrammar>> GrammarCompiler::compile(
    const ConstraintSpec& spec) {
  TURBINE_ASSIGN_OR_RETURN(std::string key, cache_key(spec, options_.limits));
  std::promise<Value> promise;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      ++stats_.hits;
      return it->second.value;
    }
    auto flight = in_flight_.find(key);
    if (flight != in_flight_.end()) {
      std::shared_future<Value> f = flight->second;
      ++stats_.hits;
      lock.unlock();
      return f.get();
    }
    in_flight_.emplace(key, promise.get_future().share());
    ++stats_.misses;
  }
  const auto t0 = std::chrono::steady_clock::now();
  Value value = [&]() -> Value {
    TURBINE_ASSIGN_OR_RETURN(Grammar g, constraint_to_grammar(spec, options_));
    return CompiledGrammar::compile(g, vocab_, options_.limits);
  }();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_.erase(key);
    stats_.compile_seconds += seconds;
    if (!value.has_value()) ++stats_.errors;
    insert_locked(key, value);
  }
  promise.set_value(value);
  return value;
}

bool GrammarCompiler::ready(const ConstraintSpec& spec) const {
  auto key = cache_key(spec, options_.limits);
  if (!key.has_value()) return true;
  std::lock_guard<std::mutex> lock(mu_);
  return cache_.count(*key) != 0;
}

void GrammarCompiler::insert_locked(const std::string& key, const Value& value) {
  const size_t bytes =
      key.size() + (value.has_value() ? (*value)->memory_bytes() : value.status().message().size());
  lru_.push_front(key);
  cache_.emplace(key, Entry{lru_.begin(), value, bytes});
  stats_.bytes += bytes;
  while (cache_.size() > 1 &&
         (cache_.size() > options_.cache_entries || stats_.bytes > options_.cache_bytes)) {
    auto victim = cache_.find(lru_.back());
    stats_.bytes -= victim->second.bytes;
    cache_.erase(victim);
    lru_.pop_back();
    ++stats_.evictions;
  }
  stats_.entries = cache_.size();
}

CompilerStats GrammarCompiler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace turbine::structured
