// Seeded random walks through a matcher's masks, shared by the unit tests, the structured_walk
// tool (tests/tools) and the bench: uniform among the allowed tokens (a stop token only where the
// mask allows one); past `soft_tokens`, steered to finish: the longest allowed token that starts a
// shortest completion (Matcher::completion_bytes), else, among up to `candidates` random allowed
// tokens, the one that leaves the fewest bytes to finish.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "structured/matcher.h"
#include "structured/vocabulary.h"

namespace turbine::structured::test_util {

struct WalkOptions {
  size_t max_tokens = 3000;
  size_t soft_tokens = 200;
  int candidates = 256;
};

struct WalkResult {
  std::vector<int32_t> tokens;  // including the final stop token, if any
  std::string text;             // bytes of the non-stop tokens
  bool complete = false;        // ended with a stop token
};

class Walker {
 public:
  explicit Walker(const Vocabulary& v) : v_(v) {
    for (int32_t id = 0; id < v.size(); ++id) {
      if (!v.bytes(id).empty()) by_bytes_.emplace(v.bytes(id), id);
    }
  }

  WalkResult walk(Matcher& m, std::mt19937_64& rng, const WalkOptions& o = {}) const {
    WalkResult r;
    std::vector<uint32_t> mask(v_.mask_words());
    std::vector<int32_t> allowed;
    for (size_t step = 0; step < o.max_tokens; ++step) {
      m.fill_next_token_bitmask(mask.data());
      allowed.clear();
      for (size_t w = 0; w < mask.size(); ++w) {
        for (uint32_t bits = mask[w]; bits != 0; bits &= bits - 1) {
          allowed.push_back(
              static_cast<int32_t>(w * 32 + static_cast<size_t>(__builtin_ctz(bits))));
        }
      }
      if (allowed.empty()) break;
      const auto is_allowed = [&](int32_t id) {
        return (mask[static_cast<size_t>(id) >> 5] >> (id & 31)) & 1;
      };
      int32_t pick = allowed[std::uniform_int_distribution<size_t>(0, allowed.size() - 1)(rng)];
      if (step >= o.soft_tokens) pick = steer(m, rng, o, allowed, is_allowed, pick);
      if (!m.accept_token(pick)) break;  // the mask allowed it: a bug the caller will see
      r.tokens.push_back(pick);
      if (v_.is_stop(pick)) {
        r.complete = true;
        break;
      }
      r.text += v_.bytes(pick);
    }
    return r;
  }

 private:
  template <typename IsAllowed>
  int32_t steer(Matcher& m, std::mt19937_64& rng, const WalkOptions& o,
                const std::vector<int32_t>& allowed, const IsAllowed& is_allowed,
                int32_t fallback) const {
    for (int32_t s : v_.stop_ids()) {
      if (is_allowed(s)) return s;  // finish as soon as we may
    }
    const std::string c = m.completion_bytes(static_cast<size_t>(v_.max_token_bytes()));
    for (size_t len = c.size(); len > 0; --len) {
      auto it = by_bytes_.find(c.substr(0, len));
      if (it != by_bytes_.end() && is_allowed(it->second)) return it->second;
    }
    int32_t pick = fallback;
    int64_t best = -1;
    for (int i = 0; i < o.candidates; ++i) {
      const int32_t t = allowed[std::uniform_int_distribution<size_t>(0, allowed.size() - 1)(rng)];
      if (!m.accept_token(t)) continue;
      const int64_t d = m.min_completion_bytes();
      m.rollback(1);
      if (best < 0 || d < best) {
        best = d;
        pick = t;
      }
    }
    return pick;
  }

  const Vocabulary& v_;
  std::unordered_map<std::string, int32_t> by_bytes_;
};

}  // namespace turbine::structured::test_util
