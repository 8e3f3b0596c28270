#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "runtime/discovery.h"

namespace turbine::runtime {

// Keys live in one map; changes are applied and delivered under one recursive mutex, so every
// watcher sees every change in the same order, and a callback may register keys itself.
class MemoryStore {
 public:
  struct Entry {
    std::string value;
    uint64_t owner = 0;
  };
  struct Watcher {
    uint64_t id = 0;
    std::string prefix;
    WatchCallback cb;
  };

  uint64_t new_lease(uint64_t wanted) {
    std::lock_guard lock(mu_);
    uint64_t id = leases_.count(wanted) ? 0 : wanted;
    while (id == 0 || leases_.count(id)) id = rng_() >> 1;
    leases_.insert(id);
    return id;
  }

  void put(uint64_t owner, const std::string& key, const std::string& value) {
    std::lock_guard lock(mu_);
    entries_[key] = {value, owner};
    notify({WatchEvent::Type::kAdded, key, value});
  }

  bool erase(const std::string& key) {
    std::lock_guard lock(mu_);
    if (entries_.erase(key) == 0) return false;
    notify({WatchEvent::Type::kRemoved, key, {}});
    return true;
  }

  void revoke(uint64_t owner) {
    std::lock_guard lock(mu_);
    std::vector<std::string> keys;
    for (const auto& [k, e] : entries_) {
      if (e.owner == owner) keys.push_back(k);
    }
    for (const auto& k : keys) erase(k);
    leases_.erase(owner);
  }

  std::vector<KeyValue> list(const std::string& prefix) {
    std::lock_guard lock(mu_);
    std::vector<KeyValue> out;
    for (auto it = entries_.lower_bound(prefix);
         it != entries_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      out.push_back({it->first, it->second.value});
    }
    return out;
  }

  uint64_t add_watcher(const std::string& prefix, WatchCallback cb) {
    std::lock_guard lock(mu_);
    const uint64_t id = ++next_watcher_;
    for (const KeyValue& kv : list(prefix)) cb({WatchEvent::Type::kAdded, kv.key, kv.value});
    watchers_.push_back({id, prefix, std::move(cb)});
    return id;
  }

  void remove_watcher(uint64_t id) {
    std::lock_guard lock(mu_);
    std::erase_if(watchers_, [id](const Watcher& w) { return w.id == id; });
  }

 private:
  void notify(const WatchEvent& ev) {
    // Copy: a callback may add or remove watchers.
    const std::vector<Watcher> ws = watchers_;
    for (const Watcher& w : ws) {
      if (ev.key.compare(0, w.prefix.size(), w.prefix) == 0) w.cb(ev);
    }
  }

  std::recursive_mutex mu_;  // guards everything below; held while callbacks run
  std::map<std::string, Entry> entries_;
  std::vector<Watcher> watchers_;
  std::set<uint64_t> leases_;
  std::mt19937_64 rng_{std::random_device{}()};
  uint64_t next_watcher_ = 0;
};

namespace {
class MemoryWatchHandle final : public WatchHandle {
 public:
  MemoryWatchHandle(std::shared_ptr<MemoryStore> store, uint64_t id)
      : store_(std::move(store)), id_(id) {}
  ~MemoryWatchHandle() override { store_->remove_watcher(id_); }

 private:
  std::shared_ptr<MemoryStore> store_;
  uint64_t id_;
};
}  // namespace

std::shared_ptr<MemoryStore> MemoryDiscovery::make_store() {
  return std::make_shared<MemoryStore>();
}

MemoryDiscovery::MemoryDiscovery(std::shared_ptr<MemoryStore> store, uint64_t instance_id)
    : store_(std::move(store)), instance_id_(store_->new_lease(instance_id)) {}

MemoryDiscovery::~MemoryDiscovery() {
  shutdown();
}

Status MemoryDiscovery::register_key(const std::string& key, const std::string& value) {
  store_->put(instance_id_, key, value);
  return Status::ok();
}

Status MemoryDiscovery::unregister_key(const std::string& key) {
  store_->erase(key);
  return Status::ok();
}

Result<std::vector<KeyValue>> MemoryDiscovery::list(const std::string& prefix) {
  return store_->list(prefix);
}

Result<std::unique_ptr<WatchHandle>> MemoryDiscovery::watch(const std::string& prefix,
                                                            WatchCallback on_event) {
  const uint64_t id = store_->add_watcher(prefix, std::move(on_event));
  return std::unique_ptr<WatchHandle>(std::make_unique<MemoryWatchHandle>(store_, id));
}

void MemoryDiscovery::shutdown() {
  std::call_once(shutdown_once_, [this] { store_->revoke(instance_id_); });
}

}  // namespace turbine::runtime
