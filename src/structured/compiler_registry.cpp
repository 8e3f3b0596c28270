#include "structured/compiler_registry.h"

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "tokenizer/tokenizer.h"

namespace turbine::structured {
namespace {

// FNV-1a, 64 bits: a fingerprint, not a defence (vocabularies are operator-supplied).
struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  template <typename T>
  void value(T v) {
    bytes(&v, sizeof v);
  }
};

uint64_t fingerprint(const tokenizer::Tokenizer& tok, const VocabularyOptions& options) {
  Fnv f;
  const int32_t n = tok.vocab_size();
  f.value(n);
  f.value(options.mask_size);
  f.value(tok.eos_id());
  for (int32_t id : options.extra_stop_ids) f.value(id);
  for (int32_t id = 0; id < n; ++id) {
    const bool special = tok.is_special(id);
    f.value(special);
    if (special) continue;
    const std::string b = tok.token_bytes(id);
    f.value(static_cast<uint32_t>(b.size()));
    f.bytes(b.data(), b.size());
  }
  return f.h;
}

std::mutex g_mu;  // guards g_compilers
std::map<uint64_t, std::weak_ptr<GrammarCompiler>>* g_compilers =
    new std::map<uint64_t, std::weak_ptr<GrammarCompiler>>();  // never destroyed: any thread

}  // namespace

Result<std::shared_ptr<GrammarCompiler>> shared_compiler(const tokenizer::Tokenizer& tok,
                                                         const VocabularyOptions& options) {
  const uint64_t key = fingerprint(tok, options);
  {
    std::lock_guard lock(g_mu);
    if (auto it = g_compilers->find(key); it != g_compilers->end()) {
      if (auto c = it->second.lock()) return c;
    }
  }
  TURBINE_ASSIGN_OR_RETURN(std::shared_ptr<const Vocabulary> vocab,
                           Vocabulary::from_tokenizer(tok, options));
  auto made = std::make_shared<GrammarCompiler>(std::move(vocab));
  std::lock_guard lock(g_mu);
  // Another thread may have built it meanwhile: keep the first.
  auto& slot = (*g_compilers)[key];
  if (auto c = slot.lock()) return c;
  slot = made;
  return made;
}

Result<std::shared_ptr<GrammarCompiler>> shared_compiler_for_model(const tokenizer::Tokenizer& tok,
                                                                   int32_t n_vocab) {
  VocabularyOptions options;
  if (n_vocab > tok.vocab_size()) options.mask_size = n_vocab;
  return shared_compiler(tok, options);
}

}  // namespace turbine::structured
