// KV cache events: the one versioned protocol header for what a worker tells routers about its
// prefix cache. Shapes follow NVIDIA Dynamo's KvCacheEvent (lib/kv-router protocols.rs):
// BlockStored / BlockRemoved / AllBlocksCleared, each wrapped with a per-worker event_id.
//
// Hash meanings: `block_hash` is this worker's chained sequence hash of the block (opaque to a
// router, used to name the block in later BlockRemoved events and as `parent_hash`);
// `tokens_hash` is the block's local hash (kv/block_hash.h), which a router can recompute.
//
// Rules: event_id starts at 0 and grows by one per event of a worker (a gap means events were
// lost); a BlockStored's parent_hash is absent only when its first block starts the sequence.
// Bump kKvEventsVersion on any change of meaning or shape.
//
// Storage tiers (issue 24, version 2): BlockStored and BlockRemoved carry `storage_tier`, the
// medium the blocks entered or left (device, host, disk; Dynamo's storage medium). A block a
// worker holds in several tiers is held in each until removed from each. Events about the device
// keep version 1 and their shape, so routers of version 1 go on indexing them; events about a
// lower tier are version 2, which version-1 routers skip (they would count a host block as a
// device hit). Version-2 routers read both.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

namespace turbine::kv {

inline constexpr uint32_t kKvEventsVersion = 1;      // events about the device's blocks
inline constexpr uint32_t kKvTierEventsVersion = 2;  // events about a lower storage tier

// BlockStored/BlockRemoved::storage_tier values (kvtier::Tier has the same numbers).
inline constexpr uint8_t kStorageDevice = 0;
inline constexpr uint8_t kStorageHost = 1;
inline constexpr uint8_t kStorageDisk = 2;

struct StoredBlock {
  uint64_t block_hash = 0;   // chained sequence hash
  uint64_t tokens_hash = 0;  // local hash of the block's tokens
  bool operator==(const StoredBlock&) const = default;
};

// Consecutive full blocks of one sequence entered the prefix cache.
struct BlockStored {
  std::optional<uint64_t> parent_hash;  // block_hash of the block before blocks[0]
  std::vector<StoredBlock> blocks;
  std::vector<int32_t> token_ids;  // blocks.size() * block_size tokens
  int32_t block_size = 0;
  uint8_t storage_tier = kStorageDevice;  // a lower tier's events may carry no token_ids
  bool operator==(const BlockStored&) const = default;
};

// Blocks left the prefix cache (evicted or cleared one by one).
struct BlockRemoved {
  std::vector<uint64_t> block_hashes;
  uint8_t storage_tier = kStorageDevice;
  bool operator==(const BlockRemoved&) const = default;
};

// Every block of this worker left the prefix cache.
struct AllBlocksCleared {
  bool operator==(const AllBlocksCleared&) const = default;
};

using KvEventData = std::variant<BlockStored, BlockRemoved, AllBlocksCleared>;

struct KvEvent {
  uint32_t version = kKvEventsVersion;
  uint64_t event_id = 0;  // monotonic per worker
  KvEventData data;
  bool operator==(const KvEvent&) const = default;
};

// The tier an event is about (device for AllBlocksCleared).
inline uint8_t storage_tier(const KvEventData& d) {
  if (const auto* s = std::get_if<BlockStored>(&d)) return s->storage_tier;
  if (const auto* r = std::get_if<BlockRemoved>(&d)) return r->storage_tier;
  return kStorageDevice;
}

// Where a worker's events go: in-process now, an event plane (ZMQ/NATS) with the
// distributed-runtime issue. publish() is called on the engine thread, in event_id order, and
// must not block (queue and return).
class KvEventSink {
 public:
  virtual ~KvEventSink() = default;
  virtual void publish(KvEvent event) = 0;
};

// Keeps every event in memory; for tests and for an in-process router. Thread-safe: the engine
// thread publishes, any thread takes.
class InProcessKvEventSink final : public KvEventSink {
 public:
  void publish(KvEvent event) override {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(event));
  }
  // Returns the events published so far and forgets them.
  std::vector<KvEvent> take() {
    std::lock_guard lock(mu_);
    return std::exchange(events_, {});
  }

 private:
  std::mutex mu_;  // guards events_
  std::vector<KvEvent> events_;
};

// Numbers events and hands them to a sink (none: events are dropped). Owned by the engine thread.
class KvEventPublisher {
 public:
  explicit KvEventPublisher(std::shared_ptr<KvEventSink> sink) : sink_(std::move(sink)) {}
  bool enabled() const { return sink_ != nullptr; }
  void publish(KvEventData data) {
    if (!sink_) return;
    KvEvent e;
    e.event_id = next_event_id_++;
    e.version = storage_tier(data) == kStorageDevice ? kKvEventsVersion : kKvTierEventsVersion;
    e.data = std::move(data);
    sink_->publish(std::move(e));
  }
  uint64_t next_event_id() const { return next_event_id_; }

 private:
  std::shared_ptr<KvEventSink> sink_;
  uint64_t next_event_id_ = 0;
};

}  // namespace turbine::kv
