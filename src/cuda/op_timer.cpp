#include "cuda/op_timer.h"

#include "cuda/device.h"

namespace turbine::cuda {

OpTimer::~OpTimer() {
  for (cudaEvent_t e : pool_) (void)cudaEventDestroy(e);
}

int OpTimer::kind(std::string_view name, bool gemm) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < rows_.size(); ++i)
    if (rows_[i].name == name) return static_cast<int>(i);
  Row r;
  r.name = std::string(name);
  r.gemm = gemm;
  rows_.push_back(std::move(r));
  open_.push_back(0);
  return static_cast<int>(rows_.size() - 1);
}

cudaEvent_t OpTimer::event_at(size_t i) {
  while (pool_.size() <= i) {
    cudaEvent_t e = nullptr;
    const cudaError_t err = cudaEventCreate(&e);
    if (err != cudaSuccess) {
      if (error_.is_ok()) error_ = check(err, "op timer event");
      return nullptr;
    }
    pool_.push_back(e);
  }
  return pool_[i];
}

void OpTimer::begin(cudaStream_t stream, int kind) {
  cudaEvent_t e = event_at(used_);
  if (e == nullptr) return;
  const cudaError_t err = cudaEventRecord(e, stream);
  if (err != cudaSuccess && error_.is_ok()) error_ = check(err, "op timer record");
  open_[static_cast<size_t>(kind)] = used_++;
}

void OpTimer::end(cudaStream_t stream, int kind, double flops, double bytes) {
  cudaEvent_t e = event_at(used_);
  if (e == nullptr) return;
  const cudaError_t err = cudaEventRecord(e, stream);
  if (err != cudaSuccess && error_.is_ok()) error_ = check(err, "op timer record");
  pending_.push_back({kind, open_[static_cast<size_t>(kind)], used_++, flops, bytes});
}

Status OpTimer::collect() {
  Status st = error_;
  error_ = Status::ok();
  std::vector<float> ms(pending_.size(), 0.0f);
  for (size_t i = 0; i < pending_.size() && st.is_ok(); ++i) {
    const Pending& p = pending_[i];
    st = check(cudaEventElapsedTime(&ms[i], pool_[p.begin_event], pool_[p.end_event]),
               "op timer elapsed");
  }
  if (st.is_ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < pending_.size(); ++i) {
      Row& r = rows_[static_cast<size_t>(pending_[i].kind)];
      ++r.calls;
      r.ms += ms[i];
      r.flops += pending_[i].flops;
      r.bytes += pending_[i].bytes;
    }
  }
  pending_.clear();
  used_ = 0;
  return st;
}

void OpTimer::add_wall(double ms) {
  std::lock_guard<std::mutex> lock(mu_);
  wall_ms_ += ms;
  ++passes_;
}

std::vector<OpTimer::Row> OpTimer::rows() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rows_;
}

double OpTimer::wall_ms() const {
  std::lock_guard<std::mutex> lock(mu_);
  return wall_ms_;
}

double OpTimer::busy_ms() const {
  std::lock_guard<std::mutex> lock(mu_);
  double s = 0.0;
  for (const Row& r : rows_) s += r.ms;
  return s;
}

int64_t OpTimer::passes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return passes_;
}

void OpTimer::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  for (Row& r : rows_) {
    r.calls = 0;
    r.ms = r.flops = r.bytes = 0.0;
  }
  wall_ms_ = 0.0;
  passes_ = 0;
}

}  // namespace turbine::cuda
