// Sampling on the GPU through engine::Engine (Backend::forward_sample): stories260K greedy tokens
// are the same with and without device sampling (F32 and BF16), and a seeded request draws the
// same tokens alone and inside a batch of other requests.
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <vector>

#include "../model/model_test_util.h"
#include "cuda/cuda_backend.h"
#include "cuda/device.h"
#include "engine/engine.h"
#include "model/model.h"

namespace turbine::cuda {
namespace {

using engine::SamplingParams;

std::unique_ptr<model::Model> load_stories() {
  auto m = model::load_model(turbine::testing::stories_gguf());
  EXPECT_TRUE(m.has_value()) << m.status().to_string();
  return m.has_value() ? std::move(m).value() : nullptr;
}

std::vector<int32_t> prompt(int i) {
  std::vector<int32_t> p = {1};
  for (int j = 0; j < 3 + 5 * i; ++j) p.push_back((j * 37 + i * 11) % 500 + 3);
  return p;
}

// Runs the requests concurrently through one engine; returns each one's tokens.
std::vector<std::vector<int32_t>> run_engine(const model::Model& m, model::DType dtype,
                                             bool device_sampling,
                                             const std::vector<std::vector<int32_t>>& prompts,
                                             const std::vector<SamplingParams>& params) {
  CudaBackendOptions o;
  o.dtype = dtype;
  o.max_num_seqs = 8;
  o.kv_cache_memory_bytes = int64_t{32} << 20;
  o.device_sampling = device_sampling;
  auto b = make_cuda_backend(m, o);
  EXPECT_TRUE(b.has_value()) << b.status().to_string();
  if (!b.has_value()) return {};
  EXPECT_EQ((*b)->supports_sampling(), device_sampling);
  engine::EngineOptions eo;
  eo.max_num_seqs = 8;
  eo.max_num_batched_tokens = 64;  // several steps of chunked prefill mixed with decodes
  engine::Engine eng(std::move(b).value(), m.config().n_vocab, eo);
  std::vector<std::future<std::vector<int32_t>>> futures;
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto promise = std::make_shared<std::promise<std::vector<int32_t>>>();
    auto acc = std::make_shared<std::vector<int32_t>>();
    futures.push_back(promise->get_future());
    engine::EngineRequest r;
    r.id = i + 1;
    r.prompt = prompts[i];
    r.params = params[i];
    r.on_output = [promise, acc](engine::EngineOutput&& out) {
      for (const auto& t : out.tokens) acc->push_back(t.token);
      if (out.finish != engine::FinishReason::kNone) {
        EXPECT_NE(out.finish, engine::FinishReason::kError) << out.error.to_string();
        promise->set_value(*acc);
      }
    };
    EXPECT_TRUE(eng.submit(std::move(r)).is_ok());
  }
  std::vector<std::vector<int32_t>> res;
  for (auto& f : futures) res.push_back(f.get());
  return res;
}

class CudaEngineSamplingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (device_count() == 0) GTEST_SKIP() << "no CUDA device";
    TURBINE_REQUIRE_ASSET(turbine::testing::stories_gguf());
  }
};

TEST_F(CudaEngineSamplingTest, GreedyTokensMatchHostSampling) {
  auto m = load_stories();
  ASSERT_NE(m, nullptr);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<SamplingParams> params;
  for (int i = 0; i < 6; ++i) {
    prompts.push_back(prompt(i));
    SamplingParams p;
    p.temperature = 0.0f;
    p.max_tokens = 40 + 4 * i;
    p.ignore_eos = true;
    params.push_back(p);
  }
  // F32 with six concurrent requests; BF16 with one (its schedule, and so its GEMM shapes, do
  // not depend on when the engine thread sees the submissions).
  for (model::DType dtype : {model::DType::kF32, model::DType::kBF16}) {
    if (dtype == model::DType::kBF16) {
      prompts.resize(1);
      params.resize(1);
    }
    const auto host = run_engine(*m, dtype, false, prompts, params);
    const auto dev = run_engine(*m, dtype, true, prompts, params);
    ASSERT_EQ(host.size(), prompts.size());
    ASSERT_EQ(dev.size(), prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(dev[i], host[i]) << "dtype " << static_cast<int>(dtype) << " request " << i;
      EXPECT_EQ(dev[i].size(), static_cast<size_t>(params[i].max_tokens));
    }
  }
}

TEST_F(CudaEngineSamplingTest, SeededDrawsDoNotDependOnTheBatch) {
  auto m = load_stories();
  ASSERT_NE(m, nullptr);
  SamplingParams seeded;
  seeded.temperature = 0.9f;
  seeded.top_k = 40;
  seeded.top_p = 0.95f;
  seeded.seed = 4242;
  seeded.max_tokens = 48;
  seeded.ignore_eos = true;
  const auto alone = run_engine(*m, model::DType::kF32, true, {prompt(2)}, {seeded});
  ASSERT_EQ(alone.size(), 1u);
  ASSERT_EQ(alone[0].size(), 48u);
  // Next to unseeded, greedy and logprobs (host-sampled) requests, admitted first.
  std::vector<std::vector<int32_t>> prompts;
  std::vector<SamplingParams> params;
  for (int i = 0; i < 5; ++i) {
    prompts.push_back(prompt(i + 3));
    SamplingParams p = seeded;
    p.seed.reset();
    if (i == 1) p.temperature = 0.0f;
    if (i == 2) p.n_logprobs = 1;
    params.push_back(p);
  }
  prompts.push_back(prompt(2));
  params.push_back(seeded);
  const auto batched = run_engine(*m, model::DType::kF32, true, prompts, params);
  ASSERT_EQ(batched.size(), prompts.size());
  EXPECT_EQ(batched.back(), alone[0]);
  // Another seed draws another sequence, and every token is in the vocabulary.
  SamplingParams other = seeded;
  other.seed = 4243;
  const auto moved = run_engine(*m, model::DType::kF32, true, {prompt(2)}, {other});
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_NE(moved[0], alone[0]);
  for (const auto& seq : batched) {
    for (int32_t t : seq) {
      EXPECT_GE(t, 0);
      EXPECT_LT(t, m->config().n_vocab);
    }
  }
}

}  // namespace
}  // namespace turbine::cuda
