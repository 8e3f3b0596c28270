// LaunchHold: keeps a stream's work from starting until the host has enqueued all of it, so that
// a profiled eager step (CudaBackendOptions::profile) runs back to back on the GPU as a CUDA graph
// would, instead of trailing the host's launches (an op's event pair would otherwise also time
// the GPU waiting for the launch of the op after its begin event).
//
// hold() enqueues a one-thread kernel that spins on a flag in pinned host memory; release() sets
// the flag. The spin gives up after `max_wait_ms` by itself, so a host that blocks on a full launch
// queue (thousands of launches) cannot deadlock with it: the step then merely starts late.
//
// Thread ownership: one thread (the stream's owner) calls hold() and release() in turn.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/status.h"

namespace turbine::cuda {

class LaunchHold {
 public:
  static Result<LaunchHold> create();
  LaunchHold() = default;
  ~LaunchHold();
  LaunchHold(LaunchHold&& o) noexcept;
  LaunchHold& operator=(LaunchHold&& o) noexcept;
  LaunchHold(const LaunchHold&) = delete;
  LaunchHold& operator=(const LaunchHold&) = delete;

  // Enqueues the spin on `stream` (the flag cleared first).
  Status hold(cudaStream_t stream, double max_wait_ms = 20.0);
  // Lets the held stream go (no-op when nothing is held).
  void release();

 private:
  volatile int32_t* flag_ = nullptr;  // mapped pinned host memory
  int32_t* device_flag_ = nullptr;    // the same memory as the device addresses it
  bool held_ = false;
};

}  // namespace turbine::cuda
