// Malformed inputs: every one must give a Status naming the file and the field, never a crash.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "model/gguf.h"
#include "model/model.h"
#include "model_test_util.h"
#include "test_support/missing_dependency.h"

namespace turbine::model {
namespace {

using turbine::testing::read_bytes;
using turbine::testing::stories_gguf;
using turbine::testing::TempDir;
using turbine::testing::write_bytes;

Status load_bytes(const TempDir& tmp, const std::vector<uint8_t>& b) {
  const auto p = tmp.path() / "stories.gguf";
  write_bytes(p, b);
  auto m = load_model(p);
  return m.status();
}

class CorruptGguf : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(stories_gguf()))
      TURBINE_MISSING_DEPENDENCY("missing asset " << stories_gguf());
    bytes_ = read_bytes(stories_gguf());
    auto f = MappedFile::open(stories_gguf());
    ASSERT_TRUE(f.has_value());
    auto g = GgufFile::parse(*f);
    ASSERT_TRUE(g.has_value());
    data_offset_ = g->data_offset();
  }
  std::vector<uint8_t> bytes_;
  uint64_t data_offset_ = 0;
  TempDir tmp_;
};

TEST_F(CorruptGguf, BadMagic) {
  bytes_[0] = 'X';
  Status s = load_bytes(tmp_, bytes_);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("stories.gguf"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("magic"), std::string::npos) << s.message();
}

TEST_F(CorruptGguf, UnsupportedVersion) {
  bytes_[4] = 9;
  Status s = load_bytes(tmp_, bytes_);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_NE(s.message().find("version"), std::string::npos) << s.message();
}

TEST_F(CorruptGguf, TruncatedData) {
  bytes_.resize(bytes_.size() - 1000);
  Status s = load_bytes(tmp_, bytes_);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("stories.gguf: tensor "), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("past end of file"), std::string::npos) << s.message();
}

TEST_F(CorruptGguf, TruncatedAtEveryRegionOfTheHeader) {
  // Cutting the file anywhere inside the header/metadata must fail cleanly.
  for (size_t cut :
       {size_t{0}, size_t{3}, size_t{10}, size_t{23}, size_t{100}, size_t{5000},
        static_cast<size_t>(data_offset_ / 2), static_cast<size_t>(data_offset_ - 1)}) {
    std::vector<uint8_t> b(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(cut));
    Status s = load_bytes(tmp_, b);
    EXPECT_FALSE(s.is_ok()) << cut;
    EXPECT_NE(s.message().find("stories.gguf"), std::string::npos) << s.message();
  }
}

TEST_F(CorruptGguf, HugeCounts) {
  uint64_t huge = uint64_t{1} << 62;
  auto b = bytes_;
  std::memcpy(b.data() + 8, &huge, 8);  // tensor count
  Status s = load_bytes(tmp_, b);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("tensor count"), std::string::npos) << s.message();
  b = bytes_;
  std::memcpy(b.data() + 16, &huge, 8);  // kv count
  s = load_bytes(tmp_, b);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("metadata count"), std::string::npos) << s.message();
}

TEST_F(CorruptGguf, HugeArrayLength) {
  // Find the tokens array header and claim 2^60 elements.
  const std::string key = "tokenizer.ggml.tokens";
  auto it = std::search(bytes_.begin(), bytes_.end(), key.begin(), key.end());
  ASSERT_NE(it, bytes_.end());
  const size_t len_at =
      static_cast<size_t>(it - bytes_.begin()) + key.size() + 4 /*type*/ + 4 /*elem type*/;
  uint64_t huge = uint64_t{1} << 60;
  std::memcpy(bytes_.data() + len_at, &huge, 8);
  Status s = load_bytes(tmp_, bytes_);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("tokenizer.ggml.tokens"), std::string::npos) << s.message();
}

TEST_F(CorruptGguf, TensorOffsetOutOfRange) {
  // The last tensor info ends just before the alignment padding; rewrite the offset of a tensor.
  const std::string name = "blk.3.attn_q.weight";
  auto it = std::search(bytes_.begin(), bytes_.end(), name.begin(), name.end());
  ASSERT_NE(it, bytes_.end());
  const size_t off_at = static_cast<size_t>(it - bytes_.begin()) + name.size() + 4 + 2 * 8 + 4;
  uint64_t far = uint64_t{1} << 40;
  std::memcpy(bytes_.data() + off_at, &far, 8);
  Status s = load_bytes(tmp_, bytes_);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), "stories.gguf: tensor blk.3.attn_q.weight: data extends past end of file");
}

TEST_F(CorruptGguf, WrongShapeAndMissingTensor) {
  auto f = MappedFile::open(stories_gguf());
  auto g = GgufFile::parse(*f);
  ASSERT_TRUE(g.has_value());
  GgufWriter w;
  for (const auto& [k, v] : g->metadata()) w.add_value(k, v);
  for (const auto& t : g->tensors()) {
    if (t.name == "blk.2.ffn_up.weight") continue;  // missing
    auto dims = t.dims;
    if (t.name == "blk.1.attn_k.weight") std::swap(dims[0], dims[1]);  // wrong shape
    w.add_tensor(t.name, t.ggml_type, dims, std::vector<uint8_t>(t.data, t.data + t.size_bytes));
  }
  ASSERT_TRUE(w.write(tmp_.path() / "bad.gguf").is_ok());
  auto m = load_model(tmp_.path() / "bad.gguf");
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.status().message().find("bad.gguf: missing tensor blk.2.ffn_up.weight"),
            std::string::npos)
      << m.status().message();

  GgufWriter w2;
  for (const auto& [k, v] : g->metadata()) w2.add_value(k, v);
  for (const auto& t : g->tensors()) {
    auto dims = t.dims;
    if (t.name == "blk.1.attn_k.weight") std::swap(dims[0], dims[1]);
    w2.add_tensor(t.name, t.ggml_type, dims, std::vector<uint8_t>(t.data, t.data + t.size_bytes));
  }
  ASSERT_TRUE(w2.write(tmp_.path() / "bad2.gguf").is_ok());
  m = load_model(tmp_.path() / "bad2.gguf");
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.status().message().find("tensor blk.1.attn_k.weight: shape"), std::string::npos)
      << m.status().message();
}

TEST_F(CorruptGguf, RandomByteFlipsNeverCrash) {
  std::mt19937 rng(42);
  const size_t header = static_cast<size_t>(data_offset_);
  for (int iter = 0; iter < 200; ++iter) {
    auto b = bytes_;
    for (int k = 0; k < 4; ++k) b[rng() % header] = static_cast<uint8_t>(rng());
    (void)load_bytes(tmp_, b);  // any Status is fine; reaching here without a crash is the test
  }
  SUCCEED();
}

TEST(ModelErrors, UnknownArchitectureAndMissingPath) {
  TempDir tmp;
  GgufWriter w;
  w.add_string("general.architecture", "mamba");
  ASSERT_TRUE(w.write(tmp.path() / "m.gguf").is_ok());
  auto m = load_model(tmp.path() / "m.gguf");
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(m.status().message().find("m.gguf: unsupported architecture 'mamba'"),
            std::string::npos);
  auto missing = load_model(tmp.path() / "nope.gguf");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace turbine::model
