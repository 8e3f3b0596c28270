// CUDA runtime plumbing: error conversion to Status and move-only owners of device memory,
// streams and events.
//
// Nothing here synchronises the host except where a name says so (`synchronize`, `copy_to_host`
// on a stream). One stream per engine: the engine thread creates it and enqueues every kernel
// of a step on it; these types are not shared across threads.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"
#include "model/model.h"

namespace turbine::cuda {

// kInternal with the CUDA error name and `what`; ok for cudaSuccess.
Status check(cudaError_t err, const char* what);

// The last launch error (cudaGetLastError), as a Status.
Status check_launch(const char* kernel);

// Number of usable devices; 0 when there is no driver, no device, or the runtime fails.
int device_count();

// Bytes per element of the storage types kernels take (F32, F16, BF16); 0 for others.
size_t dtype_bytes(model::DType dtype);

// Move-only owner of a cudaMalloc allocation.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  static Result<DeviceBuffer> allocate(size_t size_bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t size_bytes() const { return size_bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t size_bytes_ = 0;
};

// Move-only owner of a non-blocking stream.
class Stream {
 public:
  static Result<Stream> create();
  Stream() = default;
  ~Stream();
  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t get() const { return stream_; }
  Status synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
};

// Move-only owner of a timing event.
class Event {
 public:
  static Result<Event> create();
  Event() = default;
  ~Event();
  Event(Event&& other) noexcept;
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  cudaEvent_t get() const { return event_; }
  Status record(cudaStream_t stream) {
    return check(cudaEventRecord(event_, stream), "event record");
  }

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace turbine::cuda
