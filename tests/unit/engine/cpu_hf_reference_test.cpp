// Parity with PyTorch/transformers on tiny random Llama (llama3 rope scaling), Qwen2 and Qwen3
// checkpoints made by tests/tools/make_hf_reference.py (transformers 5.17, torch 2.11, on the GPU
// machine). The committed output lives in tests/fixtures/hf_reference; TURBINE_HF_REFERENCE_DIR
// points elsewhere to check a fresh run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "block_tables.h"
#include "engine/backend.h"
#include "model/model.h"

namespace turbine::engine {
namespace {

TEST(CpuHfReference, MatchesTransformers) {
  const char* env = std::getenv("TURBINE_HF_REFERENCE_DIR");
  const std::string dir = env != nullptr && *env != '\0'
                              ? std::string(env)
                              : std::string(TURBINE_SOURCE_DIR) + "/tests/fixtures/hf_reference";
  int checked = 0;
  for (const char* name : {"llama3", "qwen2", "qwen3"}) {
    SCOPED_TRACE(name);
    const std::filesystem::path p = std::filesystem::path(dir) / name;
    if (!std::filesystem::exists(p / "expected.json")) {
      ADD_FAILURE() << "missing " << (p / "expected.json");
      continue;
    }
    const nlohmann::json want = nlohmann::json::parse(std::ifstream(p / "expected.json"));
    auto m = model::load_model(p);
    ASSERT_TRUE(m.has_value()) << m.status().to_string();
    auto b = make_cpu_backend(**m, CpuBackendOptions{2, 1, 0});
    ASSERT_TRUE(b.has_value());
    testing::SlotTables tables(**b);
    const auto table = tables(0);
    std::vector<int32_t> seq = want["prompt"].get<std::vector<int32_t>>();
    const auto greedy = want["greedy"].get<std::vector<int32_t>>();
    const auto logits = want["logits"].get<std::vector<std::vector<float>>>();
    ASSERT_EQ(greedy.size(), logits.size());
    int pos = 0;
    std::vector<float> out;
    for (size_t step = 0; step < greedy.size(); ++step) {
      std::span<const int32_t> toks(seq.data() + pos, seq.size() - static_cast<size_t>(pos));
      SeqChunk ch{table, pos, toks, true};
      ASSERT_TRUE((*b)->forward(std::span<const SeqChunk>(&ch, 1), out).is_ok());
      pos = static_cast<int>(seq.size());
      ASSERT_EQ(out.size(), logits[step].size());
      float max_diff = 0;
      for (size_t i = 0; i < out.size(); ++i)
        max_diff = std::max(max_diff, std::fabs(out[i] - logits[step][i]));
      EXPECT_LT(max_diff, 1e-3f) << "step " << step;
      const auto tok = static_cast<int32_t>(std::max_element(out.begin(), out.end()) - out.begin());
      EXPECT_EQ(tok, greedy[step]) << "step " << step;
      seq.push_back(greedy[step]);  // follow the reference so one near-tie does not derail the rest
    }
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

}  // namespace
}  // namespace turbine::engine
