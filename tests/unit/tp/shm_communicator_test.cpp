// The in-process shared-memory collectives: results, determinism, and abort/reset.
#include "tp/shm_communicator.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace turbine::tp {
namespace {

// Runs fn(rank) on `size` threads at once.
void on_ranks(int size, const std::function<void(int)>& fn) {
  std::vector<std::thread> ts;
  for (int r = 0; r < size; ++r) ts.emplace_back(fn, r);
  for (auto& t : ts) t.join();
}

TEST(ShmCommunicator, AllReduceSumsInRankOrderIdenticallyOnEveryRank) {
  for (int size : {1, 2, 3, 4}) {
    SCOPED_TRACE(size);
    ShmGroup g = make_shm_group(size);
    const size_t n = 5000;  // not a multiple of the ranks or of the tile
    std::vector<std::vector<float>> bufs(static_cast<size_t>(size), std::vector<float>(n));
    for (int r = 0; r < size; ++r) {
      for (size_t i = 0; i < n; ++i)
        bufs[static_cast<size_t>(r)][i] = 1.0f / static_cast<float>(i + 1 + 7 * r) + 1e-3f * r;
    }
    // The expected sum, in rank order.
    std::vector<float> want(n);
    for (size_t i = 0; i < n; ++i) {
      float s = bufs[0][i];
      for (int r = 1; r < size; ++r) s += bufs[static_cast<size_t>(r)][i];
      want[i] = s;
    }
    std::vector<Status> st(static_cast<size_t>(size));
    on_ranks(size, [&](int r) {
      // Twice: the second call must not see the first one's state.
      for (int rep = 0; rep < 2 && st[static_cast<size_t>(r)].is_ok(); ++rep) {
        if (rep == 1) bufs[static_cast<size_t>(r)].assign(n, static_cast<float>(r));
        st[static_cast<size_t>(r)] = g.comms[static_cast<size_t>(r)]->all_reduce_sum(
            bufs[static_cast<size_t>(r)].data(), rep == 0 ? n : 3, model::DType::kF32, nullptr);
        if (rep == 0) {
          for (size_t i = 0; i < n; ++i) ASSERT_EQ(bufs[static_cast<size_t>(r)][i], want[i]);
        }
      }
    });
    for (const Status& s : st) EXPECT_TRUE(s.is_ok()) << s.to_string();
    const float tri = static_cast<float>(size * (size - 1) / 2);
    for (int r = 0; r < size; ++r) {
      EXPECT_EQ(bufs[static_cast<size_t>(r)][0], tri);
      EXPECT_EQ(bufs[static_cast<size_t>(r)][2], tri);
      EXPECT_EQ(bufs[static_cast<size_t>(r)][3], static_cast<float>(r));  // past the count
    }
  }
}

TEST(ShmCommunicator, AllGatherAndBroadcast) {
  const int size = 3;
  ShmGroup g = make_shm_group(size);
  std::vector<std::vector<int32_t>> recv(size, std::vector<int32_t>(size * 4, -1));
  std::vector<std::vector<int32_t>> bcast(size, std::vector<int32_t>(4));
  on_ranks(size, [&](int r) {
    std::vector<int32_t> send = {r, r * 10, r * 100, r * 1000};
    ASSERT_TRUE(g.comms[static_cast<size_t>(r)]
                    ->all_gather(send.data(), recv[static_cast<size_t>(r)].data(), 4,
                                 model::DType::kF32, nullptr)
                    .is_ok());
    bcast[static_cast<size_t>(r)] = {r, r, r, r};
    ASSERT_TRUE(
        g.comms[static_cast<size_t>(r)]
            ->broadcast(bcast[static_cast<size_t>(r)].data(), 4, model::DType::kF32, 2, nullptr)
            .is_ok());
    ASSERT_TRUE(g.comms[static_cast<size_t>(r)]->barrier().is_ok());
  });
  for (int r = 0; r < size; ++r) {
    for (int k = 0; k < size; ++k) {
      EXPECT_EQ(recv[static_cast<size_t>(r)][static_cast<size_t>(k * 4 + 1)], k * 10);
      EXPECT_EQ(recv[static_cast<size_t>(r)][static_cast<size_t>(k * 4 + 3)], k * 1000);
    }
    EXPECT_EQ(bcast[static_cast<size_t>(r)], (std::vector<int32_t>{2, 2, 2, 2}));
  }
}

TEST(ShmCommunicator, RejectsWhatItCannotDo) {
  ShmGroup g = make_shm_group(2);
  uint16_t h[2] = {0, 0};
  Status s = g.comms[0]->all_reduce_sum(h, 2, model::DType::kBF16, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("f32"), std::string::npos) << s.message();
  EXPECT_EQ(g.comms[0]->broadcast(h, 2, model::DType::kBF16, 5, nullptr).code(),
            StatusCode::kInvalidArgument);
}

TEST(ShmCommunicator, AbortReleasesARankWaitingForAFailedOneAndResetRearms) {
  ShmGroup g = make_shm_group(2);
  std::vector<float> buf(16, 1.0f);
  Status waited;
  std::thread rank0([&] {
    waited = g.comms[0]->all_reduce_sum(buf.data(), buf.size(), model::DType::kF32, nullptr);
  });
  // Rank 1 "fails" before its collective and aborts the group instead of joining.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  g.abort();
  rank0.join();
  EXPECT_EQ(waited.code(), StatusCode::kInternal);
  EXPECT_NE(waited.message().find("another rank failed"), std::string::npos);
  g.reset();
  std::vector<float> b1(16, 2.0f);
  std::vector<Status> st(2);
  on_ranks(2, [&](int r) {
    st[static_cast<size_t>(r)] = g.comms[static_cast<size_t>(r)]->all_reduce_sum(
        r == 0 ? buf.data() : b1.data(), 16, model::DType::kF32, nullptr);
  });
  EXPECT_TRUE(st[0].is_ok() && st[1].is_ok());
  EXPECT_EQ(buf[5], 3.0f);
  EXPECT_EQ(b1[15], 3.0f);
}

}  // namespace
}  // namespace turbine::tp
