// A model file that changes on disk under a running server (issue 18, item 12): read mode keeps
// its own copy; a mapped file that shrinks ends the process with a line naming the file (exit
// kModelFileChangedExitCode), not a bare SIGBUS.
#include <gtest/gtest.h>

#include <unistd.h>

#include <csignal>
#include <filesystem>

#include "model/mapped_file.h"
#include "model/model.h"
#include "model_test_util.h"

namespace turbine::model {
namespace {

using turbine::testing::TempDir;
using turbine::testing::write_bytes;

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 7 + 1);
  return b;
}

TEST(MappedFileTest, ReadModeHasTheBytesAndSurvivesTruncation) {
  TempDir tmp;
  const auto p = tmp.path() / "weights.bin";
  const std::vector<uint8_t> bytes = pattern(3 * 4096 + 17);
  write_bytes(p, bytes);
  auto f = MappedFile::open(p, MappedFile::Mode::kRead);
  ASSERT_TRUE(f.has_value()) << f.status().to_string();
  std::filesystem::resize_file(p, 10);
  ASSERT_EQ(f->size(), bytes.size());
  EXPECT_EQ(std::vector<uint8_t>(f->data(), f->data() + f->size()), bytes);
}

TEST(MappedFileDeathTest, TruncatedMappedFileExitsNamingTheFile) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  TempDir tmp;
  const auto p = tmp.path() / "shrinking.gguf";
  write_bytes(p, pattern(4 * 4096));
  EXPECT_EXIT(
      {
        auto f = MappedFile::open(p);
        if (!f.has_value()) std::_Exit(1);
        std::filesystem::resize_file(p, 100);
        volatile uint8_t v = f->data()[3 * 4096];  // a page past the new end: SIGBUS
        (void)v;
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(kModelFileChangedExitCode), "shrinking\\.gguf changed on disk");
}

TEST(MappedFileDeathTest, OtherBusErrorsKeepTheDefaultAction) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  TempDir tmp;
  const auto p = tmp.path() / "any.gguf";
  write_bytes(p, pattern(4096));
  EXPECT_EXIT(
      {
        auto f = MappedFile::open(p);  // installs the handler
        if (!f.has_value()) std::_Exit(1);
        std::raise(SIGBUS);  // no model address: not ours
        std::_Exit(0);
      },
      ::testing::KilledBySignal(SIGBUS), "");
}

TEST(MappedFileTest, LoadModelWithoutMmap) {
  TURBINE_REQUIRE_ASSET(turbine::testing::stories_gguf());
  auto mapped = load_model(turbine::testing::stories_gguf());
  auto read = load_model(turbine::testing::stories_gguf(), LoadOptions{.mmap = false});
  ASSERT_TRUE(mapped.has_value() && read.has_value());
  EXPECT_EQ((*mapped)->config().n_vocab, (*read)->config().n_vocab);
}

}  // namespace
}  // namespace turbine::model
