// Seeded random walks through a matcher's masks, shared by the unit tests and the
// structured_walk tool (tests/tools): uniform among the allowed tokens (a stop token only where
// the mask allows one), then, past `soft_tokens`, steering towards completion: among up to
// `candidates` random allowed tokens take the one that leaves the fewest bytes to finish
// (the first that completes the output, if any).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "structured/matcher.h"
#include "structured/vocabulary.h"

namespace turbine::structured::test_util {

struct WalkOptions {
  size_t max_tokens = 3000;
  size_t soft_tokens = 200;
  int candidates = 1024;
};

struct WalkResult {
  std::vector<int32_t> tokens;  // including the final stop token, if any
  std::string text;             // bytes of the non-stop tokens
  bool complete = false;        // ended with a stop token
};

inline WalkResult random_walk(Matcher& m, const Vocabulary& v, std::mt19937_64& rng,
                              const WalkOptions& o = {}) {
  WalkResult r;
  std::vector<uint32_t> mask(v.mask_words());
  std::vector<int32_t> allowed;
  for (size_t step = 0; step < o.max_tokens; ++step) {
    m.fill_next_token_bitmask(mask.data());
    allowed.clear();
    for (size_t w = 0; w < mask.size(); ++w) {
      for (uint32_t bits = mask[w]; bits != 0; bits &= bits - 1) {
        allowed.push_back(static_cast<int32_t>(w * 32 + static_cast<size_t>(__builtin_ctz(bits))));
      }
    }
    if (allowed.empty()) break;
    int32_t pick = allowed[std::uniform_int_distribution<size_t>(0, allowed.size() - 1)(rng)];
    if (step >= o.soft_tokens) {
      int64_t best = -1;
      for (int c = 0; c < o.candidates; ++c) {
        const int32_t t =
            allowed[std::uniform_int_distribution<size_t>(0, allowed.size() - 1)(rng)];
        if (v.is_stop(t)) {
          pick = t;
          break;
        }
        if (!m.accept_token(t)) continue;
        const int64_t d = m.min_completion_bytes();
        m.rollback(1);
        if (best < 0 || d < best) {
          best = d;
          pick = t;
          if (d == 0) break;
        }
      }
      for (int32_t s : v.stop_ids()) {  // finish as soon as we may
        if ((mask[static_cast<size_t>(s) >> 5] >> (s & 31)) & 1) pick = s;
      }
    }
    if (!m.accept_token(pick)) break;  // the mask allowed it: a bug the caller will see
    r.tokens.push_back(pick);
    if (v.is_stop(pick)) {
      r.complete = true;
      break;
    }
    r.text += v.bytes(pick);
  }
  return r;
}

}  // namespace turbine::structured::test_util
