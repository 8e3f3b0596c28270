#include "disagg/in_process_transfer.h"

#include <chrono>
#include <string>
#include <utility>

namespace turbine::disagg {

void InProcessKvTransfer::add_source(uint64_t instance_id,
                                     std::weak_ptr<engine::KvTransferSource> source) {
  std::lock_guard lock(mu_);
  sources_[instance_id] = std::move(source);
}

void InProcessKvTransfer::remove_source(uint64_t instance_id) {
  std::lock_guard lock(mu_);
  sources_.erase(instance_id);
}

std::shared_ptr<engine::KvTransferSource> InProcessKvTransfer::find(uint64_t instance_id) const {
  std::lock_guard lock(mu_);
  auto it = sources_.find(instance_id);
  return it == sources_.end() ? nullptr : it->second.lock();
}

void InProcessKvTransfer::fetch(const engine::KvTransferMeta& meta, int first_block, int n_blocks,
                                engine::KvBytesCallback user_done) {
  // Counts the fetch when it ends, whichever way.
  auto done = [c = counters_, start = std::chrono::steady_clock::now(),
               user_done = std::move(user_done)](Result<std::string> data) {
    c->fetches++;
    if (data.has_value()) {
      c->bytes += data->size();
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      c->seconds.fetch_add(s);
    } else {
      c->failures++;
    }
    user_done(std::move(data));
  };
  auto source = find(meta.instance_id);
  if (!source) {
    done(Status{StatusCode::kUnavailable,
                "no in-process KV source " + std::to_string(meta.instance_id)});
    return;
  }
  if (!(source->kv_layout() == meta.layout)) {
    done(invalid_argument("the KV source's layout differs from the transfer's"));
    return;
  }
  source->read_transfer(meta.transfer_id, first_block, n_blocks, std::move(done));
}

std::vector<engine::KvTransportStats> InProcessKvTransfer::transport_stats() const {
  return {{"in_process", counters_->fetches.load(), counters_->failures.load(),
           counters_->bytes.load(), counters_->seconds.load()}};
}

void InProcessKvTransfer::release(const engine::KvTransferMeta& meta) {
  if (auto source = find(meta.instance_id)) source->release_transfer(meta.transfer_id);
}

}  // namespace turbine::disagg
