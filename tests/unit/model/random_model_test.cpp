// Random-weight model folders (turbine gen-model): loadable by load_model for every architecture,
// deterministic per seed (whatever the thread count), sharded with an index when large.
#include "model/random_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/model.h"

namespace turbine::model {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::stringstream ss;
  ss << std::ifstream(p, std::ios::binary).rdbuf();
  return ss.str();
}

class RandomModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("turbine_random_model_test_" + std::to_string(::getpid()));
    fs::create_directories(root_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  fs::path root_;
};

TEST_F(RandomModelTest, EveryArchitectureLoadsWithItsTensors) {
  for (auto [name, arch] : {std::pair{"llama", Arch::kLlama}, std::pair{"qwen2", Arch::kQwen2},
                            std::pair{"qwen3", Arch::kQwen3}}) {
    SCOPED_TRACE(name);
    auto parsed = parse_arch(name);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, arch);
    RandomModelOptions o;
    o.arch = arch;
    o.shape = "tiny";
    o.dtype = DType::kF16;
    const fs::path dir = root_ / name;
    auto bytes = write_random_model(o, dir);
    ASSERT_TRUE(bytes.has_value()) << bytes.status().to_string();
    auto m = load_model(dir);
    ASSERT_TRUE(m.has_value()) << m.status().to_string();
    const ModelConfig& c = (*m)->config();
    auto shape = model_shape("tiny");
    ASSERT_TRUE(shape.has_value());
    EXPECT_EQ(c.arch, arch);
    EXPECT_EQ(c.dim, shape->dim);
    EXPECT_EQ(c.n_layers, shape->n_layers);
    EXPECT_EQ(c.n_kv_heads, shape->n_kv_heads);
    EXPECT_EQ(c.head_dim, shape->head_dim);
    EXPECT_EQ(c.n_vocab, shape->n_vocab);
    const LayerWeights& L = (*m)->weights().layers[0];
    EXPECT_EQ(L.wq.dtype, DType::kF16);
    EXPECT_EQ(L.bq.present(), arch == Arch::kQwen2);
    EXPECT_EQ(L.q_norm.present(), arch == Arch::kQwen3);
    // Weights are not constant: the noise reached the file.
    const auto* w = static_cast<const uint16_t*>(L.w_up.data);
    EXPECT_NE(w[0], w[1]);
  }
}

TEST_F(RandomModelTest, SameSeedSameBytesAndShardsWithAnIndex) {
  RandomModelOptions o;
  o.shape = "tiny";
  o.dtype = DType::kBF16;
  o.seed = 5;
  o.threads = 1;
  ASSERT_TRUE(write_random_model(o, root_ / "a").has_value());
  o.threads = 3;
  ASSERT_TRUE(write_random_model(o, root_ / "b").has_value());
  EXPECT_EQ(slurp(root_ / "a/model.safetensors"), slurp(root_ / "b/model.safetensors"));
  o.seed = 6;
  ASSERT_TRUE(write_random_model(o, root_ / "c").has_value());
  EXPECT_NE(slurp(root_ / "a/model.safetensors"), slurp(root_ / "c/model.safetensors"));

  o.seed = 5;
  o.shard_bytes = 200000;  // a few tensors per shard
  auto bytes = write_random_model(o, root_ / "sharded");
  ASSERT_TRUE(bytes.has_value());
  EXPECT_TRUE(fs::exists(root_ / "sharded/model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(root_ / "sharded/model.safetensors"));
  int shards = 0;
  for (const auto& e : fs::directory_iterator(root_ / "sharded"))
    shards += e.path().extension() == ".safetensors" ? 1 : 0;
  EXPECT_GT(shards, 2);
  auto a = load_model(root_ / "a");
  auto s = load_model(root_ / "sharded");
  ASSERT_TRUE(a.has_value() && s.has_value()) << s.status().to_string();
  const TensorView& wa = (*a)->weights().layers[1].w_down;
  const TensorView& ws = (*s)->weights().layers[1].w_down;
  ASSERT_EQ(wa.size_bytes, ws.size_bytes);
  EXPECT_EQ(std::memcmp(wa.data, ws.data, wa.size_bytes), 0);  // same values, other layout
}

TEST_F(RandomModelTest, RejectsUnknownShapesAndArchitectures) {
  RandomModelOptions o;
  o.shape = "llama-9000";
  EXPECT_EQ(write_random_model(o, root_ / "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_arch("gpt2").status().code(), StatusCode::kInvalidArgument);
  auto big = model_shape("llama-3.1-8b");
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(big->n_kv_heads, 8);
  EXPECT_EQ(big->rope_scaling.type, RopeScaling::Type::kLlama3);
}

}  // namespace
}  // namespace turbine::model
