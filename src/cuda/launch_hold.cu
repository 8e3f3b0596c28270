#include "cuda/launch_hold.h"

#include <utility>

#include "cuda/device.h"

namespace turbine::cuda {
namespace {

__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void hold_kernel(const volatile int32_t* flag, uint64_t max_ns) {
  const uint64_t t0 = global_ns();
  while (*flag == 0 && global_ns() - t0 < max_ns) __nanosleep(1000);
}

}  // namespace

Result<LaunchHold> LaunchHold::create() {
  LaunchHold h;
  void* p = nullptr;
  TURBINE_RETURN_IF_ERROR(
      check(cudaHostAlloc(&p, sizeof(int32_t), cudaHostAllocMapped), "launch hold flag"));
  h.flag_ = static_cast<volatile int32_t*>(p);
  *h.flag_ = 1;
  void* d = nullptr;
  TURBINE_RETURN_IF_ERROR(check(cudaHostGetDevicePointer(&d, p, 0), "launch hold flag"));
  h.device_flag_ = static_cast<int32_t*>(d);
  return Result<LaunchHold>(std::move(h));
}

LaunchHold::~LaunchHold() {
  if (flag_ != nullptr) {
    release();
    cudaFreeHost(const_cast<int32_t*>(flag_));
  }
}

LaunchHold::LaunchHold(LaunchHold&& o) noexcept
    : flag_(std::exchange(o.flag_, nullptr)),
      device_flag_(std::exchange(o.device_flag_, nullptr)),
      held_(std::exchange(o.held_, false)) {}

LaunchHold& LaunchHold::operator=(LaunchHold&& o) noexcept {
  if (this != &o) {
    if (flag_ != nullptr) {
      release();
      cudaFreeHost(const_cast<int32_t*>(flag_));
    }
    flag_ = std::exchange(o.flag_, nullptr);
    device_flag_ = std::exchange(o.device_flag_, nullptr);
    held_ = std::exchange(o.held_, false);
  }
  return *this;
}

Status LaunchHold::hold(cudaStream_t stream, double max_wait_ms) {
  if (flag_ == nullptr) return internal_error("launch hold: not created");
  release();  // a hold left over from a failed step
  *flag_ = 0;
  hold_kernel<<<1, 1, 0, stream>>>(device_flag_, static_cast<uint64_t>(max_wait_ms * 1e6));
  TURBINE_RETURN_IF_ERROR(check_launch("launch hold"));
  held_ = true;
  return Status::ok();
}

void LaunchHold::release() {
  if (!held_) return;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);  // every launch before the flag
  *flag_ = 1;
  held_ = false;
}

}  // namespace turbine::cuda
