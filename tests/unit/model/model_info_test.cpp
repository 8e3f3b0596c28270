// load_model_info: the vocabulary, chat template and context length a frontend needs, read from
// the metadata alone, equal to what the full loaders give; weights are never required.
#include <gtest/gtest.h>

#include <fstream>

#include "model/model.h"
#include "model/model_info.h"
#include "model_test_util.h"

namespace turbine::model {
namespace {

namespace fs = std::filesystem;
using turbine::testing::shared_assets;
using turbine::testing::stories_gguf;
using turbine::testing::TempDir;

void expect_same_vocab(const VocabSpec& a, const VocabSpec& b) {
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.scores, b.scores);
  EXPECT_EQ(a.token_types, b.token_types);
  EXPECT_EQ(a.merges, b.merges);
  EXPECT_EQ(a.bos_id, b.bos_id);
  EXPECT_EQ(a.eos_id, b.eos_id);
  EXPECT_EQ(a.add_bos, b.add_bos);
  EXPECT_EQ(a.add_space_prefix, b.add_space_prefix);
  EXPECT_EQ(a.chat_template, b.chat_template);
  EXPECT_EQ(a.tokenizer_json, b.tokenizer_json);
  EXPECT_EQ(a.tokenizer_config, b.tokenizer_config);
}

void expect_info_of(const ModelInfo& info, const Model& m) {
  EXPECT_EQ(info.name, m.name());
  EXPECT_EQ(info.arch_name, m.config().arch_name);
  EXPECT_EQ(info.n_vocab, m.config().n_vocab);
  EXPECT_EQ(info.max_context, m.config().max_context);
  expect_same_vocab(info.vocab, m.vocab());
}

TEST(ModelInfo, GgufMetadataEqualsTheFullLoad) {
  TURBINE_REQUIRE_ASSET(stories_gguf());
  auto m = load_model(stories_gguf());
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  auto info = load_model_info(stories_gguf());
  ASSERT_TRUE(info.has_value()) << info.status().to_string();
  expect_info_of(*info, **m);
  EXPECT_EQ(info->n_vocab, 512);
  EXPECT_FALSE(info->vocab.tokens.empty());
  EXPECT_EQ(info->path, stories_gguf());
  // model_info() of the loaded model says the same.
  expect_info_of(model_info(**m), **m);
}

TEST(ModelInfo, Llama2cHeaderAndTokenizerOnly) {
  const fs::path bin = shared_assets() / "models/stories260K/stories260K.bin";
  TURBINE_REQUIRE_ASSET(bin);
  auto m = load_model(bin);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  auto info = load_model_info(bin);
  ASSERT_TRUE(info.has_value()) << info.status().to_string();
  expect_info_of(*info, **m);
  EXPECT_EQ(info->max_context, 512);
  EXPECT_EQ(info->vocab.model, "llama");
}

// A Hugging Face folder whose weights are gone: the full loader fails, the info does not (it
// never opens a safetensors file).
TEST(ModelInfo, HfFolderNeedsNoWeights) {
  TURBINE_REQUIRE_ASSET(stories_gguf());
  auto gguf = load_model(stories_gguf());
  ASSERT_TRUE(gguf.has_value());
  TempDir tmp;
  const fs::path dir = tmp.path() / "stories-hf";
  turbine::testing::write_hf_folder(**gguf, dir, "F32");
  std::ofstream(dir / "tokenizer.json") << "{}";
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"chat_template": "{{ messages }}", "add_bos_token": false})";
  auto full = load_model(dir);
  ASSERT_TRUE(full.has_value()) << full.status().to_string();
  auto info = load_model_info(dir);
  ASSERT_TRUE(info.has_value()) << info.status().to_string();
  expect_info_of(*info, **full);
  EXPECT_EQ(info->vocab.chat_template, "{{ messages }}");
  EXPECT_EQ(info->vocab.tokenizer_json, dir / "tokenizer.json");

  fs::remove(dir / "model.safetensors");
  EXPECT_FALSE(load_model(dir).has_value());
  auto again = load_model_info(dir / "config.json");
  ASSERT_TRUE(again.has_value()) << again.status().to_string();
  EXPECT_EQ(again->max_context, (*full)->config().max_context);
  EXPECT_EQ(again->vocab.chat_template, "{{ messages }}");
}

TEST(ModelInfo, ErrorsNameTheFileAndField) {
  TempDir tmp;
  auto missing = load_model_info(tmp.path() / "nope.gguf");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);

  const fs::path bad = tmp.path() / "bad.gguf";
  std::ofstream(bad, std::ios::binary) << "GGUF\x03";
  auto truncated = load_model_info(bad);
  ASSERT_FALSE(truncated.has_value());
  EXPECT_NE(truncated.status().message().find("bad.gguf"), std::string::npos);

  const fs::path hf = tmp.path() / "hf";
  fs::create_directories(hf);
  std::ofstream(hf / "config.json") << R"({"architectures": ["LlamaForCausalLM"]})";
  auto no_dims = load_model_info(hf);
  ASSERT_FALSE(no_dims.has_value());
  EXPECT_EQ(no_dims.status().field(), "hidden_size");

  const fs::path short_bin = tmp.path() / "m.bin";
  std::ofstream(short_bin, std::ios::binary) << "abc";
  auto short_header = load_model_info(short_bin);
  ASSERT_FALSE(short_header.has_value());
  EXPECT_EQ(short_header.status().field(), "header");
}

}  // namespace
}  // namespace turbine::model
