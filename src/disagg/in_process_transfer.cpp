#include "disagg/in_process_transfer.h"

#include <string>

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
                                engine::KvBytesCallback done) {
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

void InProcessKvTransfer::release(const engine::KvTransferMeta& meta) {
  if (auto source = find(meta.instance_id)) source->release_transfer(meta.transfer_id);
}

}  // namespace turbine::disagg
