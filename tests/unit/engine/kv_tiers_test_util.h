// Shared by the KV tier tests on the CPU backend (engine/kv_tiers_test.cpp) and the CUDA backend
// (cuda/kv_tiers_cuda_test.cpp): prompts that share a prefix, and one greedy request through an
// Engine.
#pragma once

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <random>
#include <vector>

#include "engine/backend.h"
#include "engine/engine.h"
#include "model/model.h"

namespace turbine::engine::testing {

// Four prompts of 104 tokens: a shared 64-token prefix (4 blocks of 16) and their own 40.
inline std::vector<std::vector<int32_t>> kv_tier_prompts(int32_t n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(3, n_vocab - 1);
  std::vector<int32_t> prefix(64);
  for (auto& t : prefix) t = tok(rng);
  std::vector<std::vector<int32_t>> out;
  for (int p = 0; p < 4; ++p) {
    std::vector<int32_t> v = prefix;
    for (int i = 0; i < 40; ++i) v.push_back(tok(rng));
    out.push_back(std::move(v));
  }
  return out;
}

// Bytes of one 16-token KV block of `m` on the CPU backend (the tier's block size).
inline int64_t cpu_block_bytes(const model::Model& m) {
  return cpu_kv_bytes_per_token(m.config()) * 16;
}

// 8 greedy tokens (EOS ignored) for `prompt`; empty when the submission fails.
inline std::vector<int32_t> generate_greedy(Engine& engine, uint64_t id,
                                            std::vector<int32_t> prompt) {
  auto done = std::make_shared<std::promise<std::vector<int32_t>>>();
  auto tokens = std::make_shared<std::vector<int32_t>>();
  EngineRequest req;
  req.id = id;
  req.prompt = std::move(prompt);
  req.params.temperature = 0.0f;
  req.params.max_tokens = 8;
  req.params.ignore_eos = true;
  req.on_output = [done, tokens](EngineOutput&& out) {
    for (const auto& t : out.tokens) tokens->push_back(t.token);
    if (out.finish != FinishReason::kNone) {
      EXPECT_NE(out.finish, FinishReason::kError) << out.error.to_string();
      done->set_value(*tokens);
    }
  };
  auto fut = done->get_future();
  const Status st = engine.submit(std::move(req));
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  if (!st.is_ok()) return {};
  return fut.get();
}

}  // namespace turbine::engine::testing
