#include "kv/transfer_table.h"

#include <spdlog/spdlog.h>

#include <string>

namespace turbine::kv {

uint64_t TransferTable::pin(std::vector<BlockRef> blocks, Clock::time_point expires) {
  const uint64_t id = next_id_++;
  pinned_blocks_ += static_cast<int>(blocks.size());
  pinned_.emplace(id, Pinned{std::move(blocks), expires});
  return id;
}

Result<std::vector<int32_t>> TransferTable::block_ids(uint64_t transfer_id, int first,
                                                      int n) const {
  auto it = pinned_.find(transfer_id);
  if (it == pinned_.end()) {
    return Status{StatusCode::kNotFound,
                  "KV transfer " + std::to_string(transfer_id) + " is not held here"};
  }
  const auto& blocks = it->second.blocks;
  if (first < 0 || n < 0 || static_cast<size_t>(first) + static_cast<size_t>(n) > blocks.size()) {
    return invalid_argument("KV transfer " + std::to_string(transfer_id) + " has " +
                            std::to_string(blocks.size()) + " blocks");
  }
  std::vector<int32_t> ids;
  ids.reserve(static_cast<size_t>(n));
  for (int i = first; i < first + n; ++i) ids.push_back(blocks[static_cast<size_t>(i)].id());
  return ids;
}

void TransferTable::erase(std::unordered_map<uint64_t, Pinned>::iterator it) {
  pinned_blocks_ -= static_cast<int>(it->second.blocks.size());
  BlockPool::release(it->second.blocks);
  pinned_.erase(it);
}

void TransferTable::release(uint64_t transfer_id) {
  if (auto it = pinned_.find(transfer_id); it != pinned_.end()) erase(it);
}

int TransferTable::expire(Clock::time_point now) {
  int n = 0;
  for (auto it = pinned_.begin(); it != pinned_.end();) {
    auto next = std::next(it);
    if (it->second.expires <= now) {
      spdlog::warn("KV transfer {} was not released within its TTL; freeing {} blocks", it->first,
                   it->second.blocks.size());
      erase(it);
      ++n;
    }
    it = next;
  }
  return n;
}

std::optional<TransferTable::Clock::time_point> TransferTable::next_expiry() const {
  std::optional<Clock::time_point> d;
  for (const auto& [id, p] : pinned_) {
    if (!d || p.expires < *d) d = p.expires;
  }
  return d;
}

void TransferTable::clear() {
  for (auto& [id, p] : pinned_) BlockPool::release(p.blocks);
  pinned_.clear();
  pinned_blocks_ = 0;
}

}  // namespace turbine::kv
