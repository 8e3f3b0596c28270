// KV transfer between engines of one process (`turbine run --prefill-workers N`, tests): the
// decode engine's fetch reads the prefill engine's pinned blocks on that engine's thread (one host
// copy out of its backend, one into the decoder's). Sources are found by instance id.
//
// Threads: any; the source table is guarded by mu_ (held only to look a source up).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "engine/kv_transfer.h"

namespace turbine::disagg {

class InProcessKvTransfer final : public engine::KvTransfer {
 public:
  // The source stays referenced weakly: a source that went away answers Unavailable.
  void add_source(uint64_t instance_id, std::weak_ptr<engine::KvTransferSource> source);
  void remove_source(uint64_t instance_id);

  void fetch(const engine::KvTransferMeta& meta, int first_block, int n_blocks,
             engine::KvBytesCallback done) override;
  void release(const engine::KvTransferMeta& meta) override;
  std::string_view name() const override { return "in-process"; }
  std::vector<engine::KvTransportStats> transport_stats() const override;

 private:
  struct Counters {
    std::atomic<uint64_t> fetches{0}, failures{0}, bytes{0};
    std::atomic<double> seconds{0.0};
  };
  std::shared_ptr<engine::KvTransferSource> find(uint64_t instance_id) const;

  mutable std::mutex mu_;
  std::unordered_map<uint64_t, std::weak_ptr<engine::KvTransferSource>> sources_;
  // Shared with fetches in flight (their callbacks may outlive this transfer).
  std::shared_ptr<Counters> counters_ = std::make_shared<Counters>();
};

}  // namespace turbine::disagg
