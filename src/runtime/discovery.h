// Discovery: where instances and model cards are published and found.
//
// A key/value store with one lease per process: everything a process registers is attached to
// its lease and disappears when the process stops renewing it (crash) or revokes it (shutdown).
// Keys come from runtime/component.h. Two implementations: EtcdDiscovery (etcd v3 JSON
// gateway) and MemoryDiscovery (one process, for `turbine run` and tests).
//
// Watches deliver an Added for every key present when the watch starts, then Added (created or
// changed) and Removed events in order. Events of one watch are delivered on one thread at a
// time. After a store outage the implementation re-lists and delivers the difference, so a
// watcher's view converges on the store's without it doing anything.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

namespace turbine::runtime {

struct KeyValue {
  std::string key;
  std::string value;
  bool operator==(const KeyValue&) const = default;
};

struct WatchEvent {
  enum class Type { kAdded, kRemoved };
  Type type = Type::kAdded;
  std::string key;
  std::string value;  // empty for kRemoved
};
using WatchCallback = std::function<void(const WatchEvent&)>;

// Stops its watch when destroyed; no callback runs after the destructor returns.
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
};

class Discovery {
 public:
  virtual ~Discovery() = default;
  // This process's lease id: the instance id of everything it serves. Never 0.
  virtual uint64_t instance_id() const = 0;
  // Puts key=value under the lease. Kept and re-put if the lease is lost and re-granted.
  virtual Status register_key(const std::string& key, const std::string& value) = 0;
  virtual Status unregister_key(const std::string& key) = 0;
  virtual Result<std::vector<KeyValue>> list(const std::string& prefix) = 0;
  virtual Result<std::unique_ptr<WatchHandle>> watch(const std::string& prefix,
                                                     WatchCallback on_event) = 0;
  // Revokes the lease (every registered key disappears) and stops background work. Idempotent.
  virtual void shutdown() = 0;
};

// The store several MemoryDiscovery clients share (one per simulated process).
class MemoryStore;

class MemoryDiscovery final : public Discovery {
 public:
  // instance_id: the lease id wanted (0, or one in use: a random one).
  explicit MemoryDiscovery(std::shared_ptr<MemoryStore> store, uint64_t instance_id = 0);
  ~MemoryDiscovery() override;
  static std::shared_ptr<MemoryStore> make_store();

  uint64_t instance_id() const override { return instance_id_; }
  Status register_key(const std::string& key, const std::string& value) override;
  Status unregister_key(const std::string& key) override;
  Result<std::vector<KeyValue>> list(const std::string& prefix) override;
  Result<std::unique_ptr<WatchHandle>> watch(const std::string& prefix,
                                             WatchCallback on_event) override;
  void shutdown() override;

 private:
  std::shared_ptr<MemoryStore> store_;
  uint64_t instance_id_;
  std::once_flag shutdown_once_;
};

}  // namespace turbine::runtime
