// The run-time NCCL loader: a clear error naming the library when it is missing, and the
// resolved entry points of a (fake, host-memory) libnccl.so.2.
#include "tp/nccl.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

namespace turbine::tp {
namespace {

TEST(NcclLoader, MissingLibraryIsAClearError) {
  setenv("TURBINE_NCCL_LIBRARY", "/nonexistent/libnccl.so.2", 1);
  auto api = load_nccl();
  unsetenv("TURBINE_NCCL_LIBRARY");
  ASSERT_FALSE(api.has_value());
  EXPECT_EQ(api.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(api.status().message().find("/nonexistent/libnccl.so.2"), std::string::npos)
      << api.status().message();
  EXPECT_NE(api.status().message().find("needs NCCL"), std::string::npos);
}

TEST(NcclLoader, ResolvesTheEntryPointsAndKeepsMulticastOff) {
  setenv("NCCL_NVLS_ENABLE", "1", 1);
  setenv("TURBINE_NCCL_LIBRARY", FAKE_LIBNCCL, 1);
  auto api = load_nccl();
  unsetenv("TURBINE_NCCL_LIBRARY");
  ASSERT_TRUE(api.has_value()) << api.status().to_string();
  EXPECT_EQ((*api)->version, 22105);
  EXPECT_EQ((*api)->path, FAKE_LIBNCCL);
  EXPECT_STREQ(std::getenv("NCCL_NVLS_ENABLE"), "0");
  // Loaded once: a later call returns the same table.
  auto again = load_nccl();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *api);
  nccl::comm_t comm = nullptr;
  const int dev = 0;
  ASSERT_TRUE((*api)->check((*api)->comm_init_all(&comm, 1, &dev), "init").is_ok());
  std::vector<float> a = {1, 2, 3}, b(3);
  EXPECT_TRUE(
      (*api)
          ->check((*api)->all_reduce(a.data(), b.data(), 3, nccl_data_type(model::DType::kF32),
                                     nccl::kSum, comm, nullptr),
                  "all_reduce")
          .is_ok());
  EXPECT_EQ(b, a);
  setenv("FAKE_NCCL_FAIL", "1", 1);
  Status s = (*api)->check(
      (*api)->all_reduce(a.data(), b.data(), 3, nccl::kFloat32, nccl::kSum, comm, nullptr),
      "ncclAllReduce");
  unsetenv("FAKE_NCCL_FAIL");
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find("ncclAllReduce: invalid argument"), std::string::npos) << s.message();
  EXPECT_EQ(nccl_data_type(model::DType::kBF16), nccl::kBfloat16);
  EXPECT_EQ(nccl_data_type(model::DType::kQ8_0), -1);
}

}  // namespace
}  // namespace turbine::tp
