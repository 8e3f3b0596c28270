#include "cuda/device.h"

#include <utility>

namespace turbine::cuda {

Status check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok();
  return internal_error(std::string("CUDA ") + what + ": " + cudaGetErrorName(err) + " (" +
                        cudaGetErrorString(err) + ")");
}

Status check_launch(const char* kernel) {
  return check(cudaGetLastError(), kernel);
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return 0;
  }
  return n;
}

size_t dtype_bytes(model::DType dtype) {
  switch (dtype) {
    case model::DType::kF32: return 4;
    case model::DType::kF16:
    case model::DType::kBF16: return 2;
    default: return 0;
  }
}

Result<DeviceBuffer> DeviceBuffer::allocate(size_t size_bytes) {
  DeviceBuffer b;
  if (size_bytes == 0) return b;
  TURBINE_RETURN_IF_ERROR(check(cudaMalloc(&b.ptr_, size_bytes), "cudaMalloc"));
  b.size_bytes_ = size_bytes;
  return b;
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_ != nullptr) (void)cudaFree(ptr_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : ptr_(std::exchange(other.ptr_, nullptr)), size_bytes_(std::exchange(other.size_bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (ptr_ != nullptr) (void)cudaFree(ptr_);
    ptr_ = std::exchange(other.ptr_, nullptr);
    size_bytes_ = std::exchange(other.size_bytes_, 0);
  }
  return *this;
}

Result<Stream> Stream::create() {
  Stream s;
  TURBINE_RETURN_IF_ERROR(
      check(cudaStreamCreateWithFlags(&s.stream_, cudaStreamNonBlocking), "stream create"));
  return s;
}

Stream::~Stream() {
  if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
}

Stream::Stream(Stream&& other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
    stream_ = std::exchange(other.stream_, nullptr);
  }
  return *this;
}

Status Stream::synchronize() const {
  return check(cudaStreamSynchronize(stream_), "stream synchronize");
}

Result<Event> Event::create() {
  Event e;
  TURBINE_RETURN_IF_ERROR(check(cudaEventCreate(&e.event_), "event create"));
  return e;
}

Event::~Event() {
  if (event_ != nullptr) (void)cudaEventDestroy(event_);
}

Event::Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}

Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    if (event_ != nullptr) (void)cudaEventDestroy(event_);
    event_ = std::exchange(other.event_, nullptr);
  }
  return *this;
}

}  // namespace turbine::cuda
