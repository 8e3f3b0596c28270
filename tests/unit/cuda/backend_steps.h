// Shared by the CUDA backend tests that compare whole steps (FP8, the op profile, the E4M3 LM
// head): a random tiny checkpoint written to a temporary folder, and a fixed two-sequence run.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../engine/block_tables.h"
#include "common/status.h"
#include "engine/backend.h"
#include "model/model.h"
#include "model/random_model.h"

namespace turbine::cuda::testing {

// Writes a random "tiny" checkpoint (`dtype`, `quantization`, `seed`) to `dir` and loads it.
inline Result<std::unique_ptr<model::Model>> write_tiny_model(const std::filesystem::path& dir,
                                                              model::DType dtype,
                                                              model::Quantization quantization,
                                                              uint64_t seed) {
  model::RandomModelOptions o;
  o.shape = "tiny";
  o.dtype = dtype;
  o.quantization = quantization;
  o.seed = seed;
  auto bytes = model::write_random_model(o, dir);
  if (!bytes.has_value()) return bytes.status();
  return model::load_model(dir);
}

// One batched prefill of two prompts (23 and 9 tokens: 32 rows, the GEMM paths), then
// `decode_steps` decode steps of both sequences (2 rows, the skinny paths); every step's logits.
inline std::vector<float> run_two_sequences(engine::Backend& b, int decode_steps = 3) {
  using engine::SeqChunk;
  engine::testing::SlotTables tables(b);
  const auto t0 = tables(0), t1 = tables(1);
  std::vector<int32_t> p0, p1;
  for (int i = 0; i < 23; ++i) p0.push_back((i * 37 + 11) % 500 + 3);
  for (int i = 0; i < 9; ++i) p1.push_back((i * 91 + 5) % 500 + 3);
  std::vector<float> all, logits;
  EXPECT_TRUE(
      b.forward(std::vector<SeqChunk>{{t0, 0, p0, true}, {t1, 0, p1, true}}, logits).is_ok());
  all.insert(all.end(), logits.begin(), logits.end());
  for (int step = 0; step < decode_steps; ++step) {
    const int32_t a = 40 + step, c = 300 - step;
    EXPECT_TRUE(b.forward(std::vector<SeqChunk>{{t0, 23 + step, {&a, 1}, true},
                                                {t1, 9 + step, {&c, 1}, true}},
                          logits)
                    .is_ok());
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

}  // namespace turbine::cuda::testing
