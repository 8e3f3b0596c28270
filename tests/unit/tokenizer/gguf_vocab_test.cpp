// The vocabulary the GGUF loader reads from stories260K.gguf must tokenize exactly like the
// llama2.c tok512.bin vocabulary the encoding fixtures were made with.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "model/model.h"
#include "test_support/missing_dependency.h"
#include "test_vocab.h"
#include "tokenizer/tokenizer.h"

namespace turbine::tokenizer {
namespace {

TEST(GgufVocab, Stories260kMatchesLlama2cVocabulary) {
  const auto dir = test_util::shared_assets() / "models/stories260K";
  if (!std::filesystem::exists(dir / "stories260K.gguf") ||
      !std::filesystem::exists(dir / "tok512.bin")) {
    TURBINE_MISSING_DEPENDENCY("stories260K.gguf or tok512.bin not found under " << dir);
  }
  auto model = model::load_model(dir / "stories260K.gguf");
  ASSERT_TRUE(model.has_value()) << model.status().to_string();
  const model::VocabSpec& gguf = (*model)->vocab();
  EXPECT_EQ(gguf.model, "llama");
  EXPECT_EQ(gguf.bos_id, 1);
  EXPECT_EQ(gguf.eos_id, 2);
  EXPECT_TRUE(gguf.add_bos);
  EXPECT_TRUE(gguf.add_space_prefix);

  auto bin = test_util::read_llama2c_vocab(dir / "tok512.bin", 512);
  ASSERT_TRUE(bin.has_value());
  EXPECT_EQ(gguf.tokens, bin->tokens);
  EXPECT_EQ(gguf.token_types, bin->token_types);

  auto from_gguf = make_tokenizer(gguf);
  ASSERT_TRUE(from_gguf.has_value()) << from_gguf.status().to_string();
  auto from_bin = make_tokenizer(*bin);
  ASSERT_TRUE(from_bin.has_value());

  std::ifstream in(std::filesystem::path(TURBINE_SOURCE_DIR) /
                   "tests/fixtures/tokenizer/stories260k_encode.json");
  ASSERT_TRUE(in) << "encoding fixture missing";
  const auto doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(doc.is_discarded());
  for (const auto& c : doc.at("cases")) {
    const auto text = c.at("text").get<std::string>();
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ((*from_gguf)->encode(text, false), ids) << "text: " << text;
    EXPECT_EQ((*from_gguf)->encode(text, true), (*from_bin)->encode(text, true))
        << "text: " << text;
    EXPECT_EQ((*from_gguf)->decode((*from_gguf)->encode(text, true), true), text);
  }
}

}  // namespace
}  // namespace turbine::tokenizer
