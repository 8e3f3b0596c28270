// llama2.c checkpoints end to end: stories260K.bin + tok512.bin through the Engine reproduce
// run.c's greedy output, and the GGUF copy that bench/gen_llama2c would write decodes the same.
#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <sstream>

#include "../model/model_test_util.h"
#include "engine/engine.h"
#include "model/llama2c.h"
#include "model/mapped_file.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace turbine::engine {
namespace {

namespace fs = std::filesystem;

fs::path stories_bin() {
  return turbine::testing::shared_assets() / "models/stories260K/stories260K.bin";
}

// Greedy tokens after BOS through a real Engine.
std::vector<int32_t> generate(const model::Model& m, int max_tokens) {
  auto backend = make_cpu_backend(m, CpuBackendOptions{2, 4, 0});
  EXPECT_TRUE(backend.has_value()) << backend.status().to_string();
  if (!backend.has_value()) return {};
  EngineOptions eo;
  eo.max_num_seqs = 4;
  Engine engine(std::move(backend).value(), m.config().n_vocab, eo);
  auto done = std::make_shared<std::promise<std::vector<int32_t>>>();
  auto tokens = std::make_shared<std::vector<int32_t>>();
  EngineRequest req;
  req.id = 1;
  req.prompt = {1};
  req.params.temperature = 0.0f;
  req.params.max_tokens = max_tokens;
  req.params.stop_token_ids = {1};  // run.c stops when it samples BOS
  req.on_output = [done, tokens](EngineOutput&& out) {
    for (const auto& t : out.tokens) tokens->push_back(t.token);
    if (out.finish != FinishReason::kNone) done->set_value(*tokens);
  };
  auto fut = done->get_future();
  const Status st = engine.submit(std::move(req));
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  if (!st.is_ok()) return {};
  return fut.get();
}

TEST(Llama2cEngine, Stories260KBinGreedyMatchesRunC) {
  const fs::path golden_path =
      turbine::testing::shared_assets() / "models/stories260K/stories260K_greedy_golden.txt";
  TURBINE_REQUIRE_ASSET(stories_bin());
  TURBINE_REQUIRE_ASSET(golden_path);
  auto m = model::load_model(stories_bin());
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  EXPECT_EQ((*m)->config().arch_name, "llama2.c");
  auto tok = tokenizer::make_tokenizer((*m)->vocab());  // from tok512.bin beside it
  ASSERT_TRUE(tok.has_value()) << tok.status().to_string();
  std::stringstream golden;
  golden << std::ifstream(golden_path, std::ios::binary).rdbuf();
  // run.c `-n 256`: 256 new tokens, then a newline.
  const std::vector<int32_t> ids = generate(**m, 256);
  EXPECT_EQ(ids.size(), 256u);
  EXPECT_EQ((*tok)->decode(ids, true) + "\n", golden.str());
  // And the prompt path: run.c's tokenizer gives the same ids as ours for its own story.
  const std::vector<int32_t> enc =
      (*tok)->encode("Once upon a time, there was a little girl", true);
  EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + static_cast<long>(enc.size()) - 1),
            std::vector<int32_t>(enc.begin() + 1, enc.end()));
}

TEST(Llama2cEngine, GgufCopyDecodesTheSame) {
  TURBINE_REQUIRE_ASSET(stories_bin());
  auto file = model::MappedFile::open(stories_bin());
  ASSERT_TRUE(file.has_value()) << file.status().to_string();
  model::Llama2cHeader h;
  std::memcpy(&h, file->data(), model::kLlama2cHeaderBytes);
  const std::span<const float> weights(
      reinterpret_cast<const float*>(file->data() + model::kLlama2cHeaderBytes),
      (file->size() - model::kLlama2cHeaderBytes) / sizeof(float));
  auto bin = model::load_model(stories_bin());
  ASSERT_TRUE(bin.has_value()) << bin.status().to_string();
  turbine::testing::TempDir dir;
  ASSERT_TRUE(model::write_llama2c_as_gguf(dir.path() / "s.gguf", h, weights, (*bin)->vocab(),
                                           "stories260K")
                  .is_ok());
  auto gguf = model::load_model(dir.path() / "s.gguf");
  ASSERT_TRUE(gguf.has_value()) << gguf.status().to_string();
  const std::vector<int32_t> a = generate(**bin, 48), b = generate(**gguf, 48);
  EXPECT_EQ(a.size(), 48u);
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace turbine::engine
