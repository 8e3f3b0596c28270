#include "cuda/nccl_communicator.h"

#include <cuda_runtime.h>

#include <condition_variable>
#include <mutex>
#include <string>

#include "cuda/device.h"
#include "tp/nccl.h"

namespace turbine::cuda {
namespace {

// The rank threads' host barrier (generation count under a mutex), with abort for a failed rank.
struct HostBarrier {
  explicit HostBarrier(int n) : size(n) {}
  Status wait() {
    std::unique_lock lock(mu);
    if (aborted) return aborted_status();
    const uint64_t gen = generation;
    if (++arrived == size) {
      arrived = 0;
      ++generation;
      cv.notify_all();
      return Status::ok();
    }
    cv.wait(lock, [&] { return generation != gen || aborted; });
    return aborted ? aborted_status() : Status::ok();
  }
  void abort() {
    std::lock_guard lock(mu);
    aborted = true;
    cv.notify_all();
  }
  void reset() {
    std::lock_guard lock(mu);
    aborted = false;
    arrived = 0;
  }
  static Status aborted_status() {
    return internal_error("tensor-parallel barrier aborted: another rank failed");
  }
  const int size;
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  uint64_t generation = 0;
  bool aborted = false;
};

class NcclCommunicator final : public tp::Communicator {
 public:
  NcclCommunicator(const tp::NcclApi* api, tp::nccl::comm_t comm, int rank, int size,
                   std::shared_ptr<HostBarrier> barrier)
      : api_(api), comm_(comm), rank_(rank), size_(size), barrier_(std::move(barrier)) {}
  ~NcclCommunicator() override {
    if (comm_ != nullptr) (void)api_->comm_destroy(comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Status all_reduce_sum(void* buf, size_t count, model::DType dtype, void* stream) override {
    const tp::nccl::data_type_t t = tp::nccl_data_type(dtype);
    if (t < 0) return invalid_argument("NCCL all_reduce_sum: unsupported dtype");
    if (count == 0) return Status::ok();
    return api_->check(api_->all_reduce(buf, buf, count, t, tp::nccl::kSum, comm_, stream),
                       "ncclAllReduce");
  }
  Status all_gather(const void* send, void* recv, size_t count, model::DType dtype,
                    void* stream) override {
    const tp::nccl::data_type_t t = tp::nccl_data_type(dtype);
    if (t < 0) return invalid_argument("NCCL all_gather: unsupported dtype");
    if (count == 0) return Status::ok();
    return api_->check(api_->all_gather(send, recv, count, t, comm_, stream), "ncclAllGather");
  }
  Status broadcast(void* buf, size_t count, model::DType dtype, int root, void* stream) override {
    const tp::nccl::data_type_t t = tp::nccl_data_type(dtype);
    if (t < 0) return invalid_argument("NCCL broadcast: unsupported dtype");
    if (root < 0 || root >= size_) return invalid_argument("NCCL broadcast: root out of range");
    if (count == 0) return Status::ok();
    return api_->check(api_->broadcast(buf, buf, count, t, root, comm_, stream), "ncclBroadcast");
  }
  Status barrier() override { return size_ == 1 ? Status::ok() : barrier_->wait(); }

 private:
  const tp::NcclApi* api_;
  tp::nccl::comm_t comm_;
  const int rank_;
  const int size_;
  std::shared_ptr<HostBarrier> barrier_;
};

}  // namespace

Result<NcclGroup> make_nccl_group(std::span<const int> devices) {
  if (devices.empty()) return invalid_argument("NCCL group: no devices");
  TURBINE_ASSIGN_OR_RETURN(const tp::NcclApi* api, tp::load_nccl());
  const int n = static_cast<int>(devices.size());
  std::vector<tp::nccl::comm_t> comms(devices.size(), nullptr);
  TURBINE_RETURN_IF_ERROR(
      api->check(api->comm_init_all(comms.data(), n, devices.data()), "ncclCommInitAll"));
  auto barrier = std::make_shared<HostBarrier>(n);
  NcclGroup g;
  for (int r = 0; r < n; ++r) {
    g.comms.push_back(
        std::make_unique<NcclCommunicator>(api, comms[static_cast<size_t>(r)], r, n, barrier));
  }
  g.abort = [barrier] { barrier->abort(); };
  g.reset = [barrier] { barrier->reset(); };
  return g;
}

}  // namespace turbine::cuda
