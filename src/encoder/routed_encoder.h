// RoutedEncoder: one served encoder model over several workers (AsyncEncoders: remote workers,
// or in-process ones), least-loaded.
//
// Each request goes to the worker with the fewest requests in flight (ties rotate, so an idle
// pool is used round-robin). A request that fails with kUnavailable (the worker went away, its
// connection broke, it is silent or shutting down) is tried on another worker it has not tried,
// up to `retry_limit` more times: encoder requests have no state to carry over, so a retry is a
// plain resubmission. Other errors (bad input, a full queue) go to the caller as they are.
//
// Workers come and go while requests run: remove_worker() only stops routing to one; requests in
// flight there keep their reference and finish or fail there.
//
// Made with std::make_shared (a retry finds the router through a weak reference, so a worker's
// late answer after the router is gone just fails the request).
//
// Threads: every method from any thread; mu_ guards the worker table and is never held while a
// worker is called.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "encoder/async_encoder.h"

namespace turbine::encoder {

class RoutedEncoder final : public AsyncEncoder,
                            public std::enable_shared_from_this<RoutedEncoder> {
 public:
  explicit RoutedEncoder(std::string model_name, int retry_limit = 3);

  // Adds (or replaces) worker `id`. `info` is what its model card says.
  void add_worker(uint64_t id, std::shared_ptr<AsyncEncoder> worker, EncoderInfo info);
  void remove_worker(uint64_t id);
  size_t n_workers() const;
  std::vector<uint64_t> workers() const;

  void submit(EncoderRequest request, EncoderCallback done) override;
  // The first worker's (the model's) info; the last one known once every worker left.
  EncoderInfo info() const override;
  int in_flight() const override;
  void shutdown() override;

 private:
  struct Attempt;
  // The least-loaded worker not in `tried`; null when none is left.
  std::shared_ptr<AsyncEncoder> pick(const std::vector<uint64_t>& tried, uint64_t& id);
  void dispatch(std::shared_ptr<Attempt> attempt);

  const std::string model_name_;
  const int retry_limit_;
  mutable std::mutex mu_;  // guards everything below
  std::map<uint64_t, std::shared_ptr<AsyncEncoder>> workers_;
  EncoderInfo info_;
  bool has_info_ = false;
  uint64_t rotate_ = 0;
  bool shut_down_ = false;
};

}  // namespace turbine::encoder
