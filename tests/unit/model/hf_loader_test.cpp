// Hugging Face folders: config parsing, sharding, Q/K layout, and the errors a bad folder gives.
#include <gtest/gtest.h>

#include <fstream>

#include "model/model.h"
#include "model_test_util.h"
#include "test_support/missing_dependency.h"

namespace turbine::model {
namespace {

using nlohmann::json;
using turbine::testing::stories_gguf;
using turbine::testing::TempDir;

class HfLoader : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(stories_gguf()))
      TURBINE_MISSING_DEPENDENCY("missing asset " << stories_gguf());
    auto m = load_model(stories_gguf());
    ASSERT_TRUE(m.has_value());
    gguf_ = std::move(m).value();
    dir_ = tmp_.path() / "stories-hf";
    turbine::testing::write_hf_folder(*gguf_, dir_, "F32");
  }
  json config() {
    std::ifstream in(dir_ / "config.json");
    return json::parse(in);
  }
  void set_config(const json& j) { std::ofstream(dir_ / "config.json") << j.dump(); }

  std::unique_ptr<Model> gguf_;
  TempDir tmp_;
  std::filesystem::path dir_;
};

TEST_F(HfLoader, LoadsConfigWeightsAndVocabFiles) {
  std::ofstream(dir_ / "tokenizer.json") << "{}";
  std::ofstream(dir_ / "tokenizer_config.json")
      << R"({"chat_template": "{{ messages }}", "add_bos_token": false})";
  std::ofstream(dir_ / "generation_config.json") << R"({"eos_token_id": [2, 7]})";
  auto m = load_model(dir_);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  const ModelConfig& c = (*m)->config();
  EXPECT_EQ(c.arch_name, "LlamaForCausalLM");
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.ffn_dim, 172);
  EXPECT_EQ(c.rope_layout, RopeLayout::kHalves);
  EXPECT_EQ((*m)->name(), "stories-hf");
  const VocabSpec& v = (*m)->vocab();
  EXPECT_EQ(v.model, "hf");
  EXPECT_EQ(v.tokenizer_json, dir_ / "tokenizer.json");
  EXPECT_EQ(v.chat_template, "{{ messages }}");
  EXPECT_FALSE(v.add_bos);
  EXPECT_EQ(v.bos_id, 1);
  EXPECT_EQ(v.eos_id, 2);
  // Q rows are permuted (interleaved -> halves); V rows are not.
  const auto& g0 = gguf_->weights().layers[0];
  const auto& h0 = (*m)->weights().layers[0];
  const auto* gq = static_cast<const float*>(g0.wq.data);
  const auto* hq = static_cast<const float*>(h0.wq.data);
  EXPECT_EQ(hq[(0 * 8 + 4 + 1) * 64 + 5],
            gq[(0 * 8 + 3) * 64 + 5]);  // HF row a*4+i == GGUF row 2i+a
  EXPECT_EQ(std::memcmp(g0.wv.data, h0.wv.data, g0.wv.size_bytes), 0);
}

TEST_F(HfLoader, ConfigJsonPathAndTrailingSlashWork) {
  EXPECT_TRUE(load_model(dir_ / "config.json").has_value());
  EXPECT_TRUE(load_model(dir_.string() + "/").has_value());
}

TEST_F(HfLoader, RopeScalingAndArchitectures) {
  json j = config();
  j["rope_scaling"] = {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  set_config(j);
  auto m = load_model(dir_);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  EXPECT_EQ((*m)->config().rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_FLOAT_EQ((*m)->config().rope_scaling.factor, 8.0f);
  EXPECT_EQ((*m)->config().rope_scaling.original_max_position, 8192);

  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
  set_config(j);
  m = load_model(dir_);
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(m.status().message().find("yarn"), std::string::npos);

  j["rope_scaling"] = nullptr;
  j["architectures"] = {"MistralForCausalLM"};
  j["sliding_window"] = 4096;
  set_config(j);
  m = load_model(dir_);
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.status().message().find("sliding_window"), std::string::npos) << m.status().message();
  j["sliding_window"] = nullptr;
  set_config(j);
  EXPECT_TRUE(load_model(dir_).has_value());

  j["architectures"] = {"GPT2LMHeadModel"};
  set_config(j);
  m = load_model(dir_);
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.status().message().find("config.json: unsupported architecture 'GPT2LMHeadModel'"),
            std::string::npos);

  // Qwen2 needs q/k/v biases, which this folder lacks: the error names the tensor.
  j["architectures"] = {"Qwen2ForCausalLM"};
  set_config(j);
  m = load_model(dir_);
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.status().message().find("model.layers.0.self_attn.q_proj.bias"), std::string::npos)
      << m.status().message();
}

TEST_F(HfLoader, ShapeMismatchAndBadJson) {
  json j = config();
  j["intermediate_size"] = 128;
  set_config(j);
  auto m = load_model(dir_);
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.status().message().find("model.layers.0.mlp.gate_proj.weight: shape"),
            std::string::npos)
      << m.status().message();

  j["intermediate_size"] = "big";
  set_config(j);
  m = load_model(dir_);
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.status().message().find("intermediate_size"), std::string::npos);

  std::ofstream(dir_ / "config.json") << "{not json";
  m = load_model(dir_);
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.status().message().find("config.json"), std::string::npos);
}

TEST_F(HfLoader, TruncatedSafetensors) {
  auto bytes = turbine::testing::read_bytes(dir_ / "model.safetensors");
  bytes.resize(bytes.size() - 100);
  turbine::testing::write_bytes(dir_ / "model.safetensors", bytes);
  auto m = load_model(dir_);
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(m.status().message().find("model.safetensors: tensor "), std::string::npos)
      << m.status().message();
  EXPECT_NE(m.status().message().find("past end of file"), std::string::npos);

  uint64_t huge = uint64_t{1} << 50;
  std::memcpy(bytes.data(), &huge, 8);
  turbine::testing::write_bytes(dir_ / "model.safetensors", bytes);
  m = load_model(dir_);
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.status().message().find("header length"), std::string::npos);
}

}  // namespace
}  // namespace turbine::model
