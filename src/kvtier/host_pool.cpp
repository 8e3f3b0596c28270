#include "kvtier/host_pool.h"

#include <cstring>

namespace turbine::kvtier {

Result<std::unique_ptr<HostPool>> HostPool::create(int64_t budget_bytes, int64_t block_bytes,
                                                   std::shared_ptr<HostMemory> memory) {
  if (block_bytes <= 0) return invalid_argument("the KV layout has no bytes to offload");
  // Slots start on 64-byte boundaries (cache lines; the copies are wide).
  const size_t slot_bytes = slot_bytes_for(block_bytes);
  const auto n_slots = static_cast<size_t>(budget_bytes / static_cast<int64_t>(slot_bytes));
  if (n_slots == 0) {
    return invalid_argument("--kv-offload-host-bytes " + std::to_string(budget_bytes) +
                                " holds no KV block (a block is " + std::to_string(block_bytes) +
                                " bytes)",
                            "kv_offload_host_bytes");
  }
  const int64_t avail = host_available_bytes();
  const auto total = static_cast<int64_t>(n_slots * slot_bytes);
  if (avail >= 0 && total > avail) {
    return invalid_argument("--kv-offload-host-bytes " + std::to_string(budget_bytes) +
                                " is more than the host's available memory (" +
                                std::to_string(avail) + " bytes)",
                            "kv_offload_host_bytes");
  }
  if (!memory) memory = pageable_host_memory();
  void* arena = memory->allocate(n_slots * slot_bytes);
  if (arena == nullptr) {
    return Status(StatusCode::kResourceExhausted,
                  "cannot allocate " + std::to_string(total) + " bytes of " + memory->kind() +
                      " host memory for --kv-offload-host-bytes",
                  "kv_offload_host_bytes");
  }
  return std::unique_ptr<HostPool>(new HostPool(std::move(memory), static_cast<uint8_t*>(arena),
                                                n_slots, block_bytes, slot_bytes));
}

HostPool::HostPool(std::shared_ptr<HostMemory> memory, uint8_t* arena, size_t n_slots,
                   int64_t block_bytes, size_t slot_bytes)
    : memory_(std::move(memory)),
      arena_(arena),
      n_slots_(n_slots),
      block_bytes_(block_bytes),
      slot_bytes_(slot_bytes) {
  free_.reserve(n_slots_);
  for (size_t s = n_slots_; s > 0; --s) free_.push_back(arena_ + (s - 1) * slot_bytes_);
}

HostPool::~HostPool() {
  memory_->release(arena_, n_slots_ * slot_bytes_);
}

std::optional<uint64_t> HostPool::lru() const {
  if (lru_.empty()) return std::nullopt;
  return lru_.front();
}

std::span<const uint8_t> HostPool::peek(uint64_t hash) const {
  auto it = index_.find(hash);
  if (it == index_.end()) return {};
  return {it->second.slot, static_cast<size_t>(block_bytes_)};
}

void HostPool::put(uint64_t hash, std::span<const uint8_t> bytes) {
  if (free_.empty() || index_.count(hash) != 0 || bytes.size() != static_cast<size_t>(block_bytes_))
    return;  // callers check; a wrong call stores nothing rather than corrupt a slot
  uint8_t* slot = free_.back();
  free_.pop_back();
  const uint64_t sum = copier_.copy(bytes, {slot, bytes.size()});
  lru_.push_back(hash);
  index_.emplace(hash, Entry{slot, sum, std::prev(lru_.end())});
}

uint8_t* HostPool::adopt(uint64_t hash, uint8_t* slot) {
  if (free_.empty() || index_.count(hash) != 0 || slot == nullptr) return slot;
  uint8_t* given = free_.back();
  free_.pop_back();
  const uint64_t sum = block_checksum({slot, static_cast<size_t>(block_bytes_)});
  lru_.push_back(hash);
  index_.emplace(hash, Entry{slot, sum, std::prev(lru_.end())});
  return given;
}

Status HostPool::get(uint64_t hash, std::span<uint8_t> dst) {
  auto it = index_.find(hash);
  if (it == index_.end()) return not_found("block not in the host tier");
  if (dst.size() != static_cast<size_t>(block_bytes_))
    return internal_error("host tier: wrong destination size");
  // The checksum is of the bytes as copied into `dst`: what the caller gets is what was checked.
  const std::span<const uint8_t> src(it->second.slot, dst.size());
  if (copier_.copy(src, dst) != it->second.checksum) {
    erase(hash);
    return data_loss("host tier: block checksum mismatch");
  }
  lru_.splice(lru_.end(), lru_, it->second.lru);
  return Status::ok();
}

void HostPool::touch(uint64_t hash) {
  auto it = index_.find(hash);
  if (it != index_.end()) lru_.splice(lru_.end(), lru_, it->second.lru);
}

void HostPool::erase(uint64_t hash) {
  auto it = index_.find(hash);
  if (it == index_.end()) return;
  lru_.erase(it->second.lru);
  free_.push_back(it->second.slot);
  index_.erase(it);
}

void HostPool::corrupt_for_test(uint64_t hash) {
  auto it = index_.find(hash);
  if (it != index_.end()) it->second.slot[0] ^= 0x5a;
}

}  // namespace turbine::kvtier
