// SimulatedKvLink: a decode engine's one inbound KV link, modelled (engine::KvLink). A fetch of
// `bytes` takes bytes * 8 / (gbps * 1e9) seconds of simulated time, i.e. that divided by `speedup`
// of wall time, starting when the link is free: fetches queue behind each other, as on one NIC.
// Owned by one engine; its engine thread calls book().
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "engine/kv_transfer.h"

namespace turbine::mock {

class SimulatedKvLink final : public engine::KvLink {
 public:
  SimulatedKvLink(double gbps, double speedup) : gbps_(gbps), speedup_(speedup) {}

  Booking book(int64_t bytes, Clock::time_point now) override {
    const double seconds = static_cast<double>(bytes) * 8.0 / (gbps_ * 1e9);
    const auto wall = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(seconds / speedup_));
    free_at_ = std::max(free_at_, now) + wall;
    return {free_at_, seconds};
  }

 private:
  const double gbps_;
  const double speedup_;
  Clock::time_point free_at_{};  // the link is busy until then
};

}  // namespace turbine::mock
