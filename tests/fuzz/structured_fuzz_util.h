// Shared by the structured-output fuzz targets: compiles whatever grammar a front end produced
// against a small vocabulary (single bytes plus multi-byte tokens that span JSON terminals), then
// walks a few steps choosing tokens from the input, checking that every token the mask allows is
// accepted and every token it forbids is rejected. Limits keep each input to milliseconds.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "structured/compiled_grammar.h"
#include "structured/grammar.h"
#include "structured/matcher.h"
#include "structured/vocabulary.h"

namespace turbine::structured::fuzz {

inline CompileLimits fuzz_limits() {
  CompileLimits l;
  l.max_input_bytes = 8192;
  l.max_repeat = 64;
  l.max_nfa_states = 20000;
  l.max_dfa_states = 1500;
  l.max_mask_work = 300'000;
  l.max_nesting_depth = 24;
  return l;
}

inline std::shared_ptr<const Vocabulary> fuzz_vocab() {
  static const std::shared_ptr<const Vocabulary> v = [] {
    std::vector<std::string> toks = {""};
    for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, static_cast<char>(b)));
    for (const char* t :
         {"{\"",   "\":",  "\",\"", "\"}", "},{", "[1,",      "true",     "null",
          "\\u00", "\\\"", "ab",    "abc", "12",  "\xC3\xA9", "\xF0\x9F", "\x98\x80",
          " \"",   "\n  ", "-0.",   "e+",  "::=", "[^",       "a*"}) {
      toks.push_back(t);
    }
    auto r = Vocabulary::from_tokens(std::move(toks), {}, {0});
    if (!r.has_value()) std::abort();
    return *r;
  }();
  return v;
}

inline void exercise(const Result<Grammar>& g, const uint8_t* data, size_t size) {
  if (!g.has_value()) {
    if (g.status().code() != StatusCode::kInvalidArgument) std::abort();
    return;
  }
  auto compiled = CompiledGrammar::compile(*g, fuzz_vocab(), fuzz_limits());
  if (!compiled.has_value()) {
    if (compiled.status().code() != StatusCode::kInvalidArgument) std::abort();
    return;
  }
  const Vocabulary& v = *fuzz_vocab();
  Matcher m(*compiled);
  std::vector<uint32_t> mask(v.mask_words());
  for (size_t step = 0; step < 12 && !m.is_terminated(); ++step) {
    m.fill_next_token_bitmask(mask.data());
    std::vector<int32_t> allowed;
    for (int32_t id = 0; id < v.size(); ++id) {
      const bool in = (mask[static_cast<size_t>(id) >> 5] >> (id & 31)) & 1;
      const bool ok = m.accept_token(id);
      if (ok) m.rollback(1);
      if (in != ok) std::abort();  // the mask must agree with the matcher
      if (in) allowed.push_back(id);
    }
    if (allowed.empty()) std::abort();  // a live matcher always has a way forward
    const size_t pick = size > 0 ? data[step % size] % allowed.size() : 0;
    if (!m.accept_token(allowed[pick])) std::abort();
  }
  (void)m.completion_bytes(64);
}

}  // namespace turbine::structured::fuzz
