// FrequencyFilter: how often a block has been seen (offered to the tiers or hit in them), so the
// disk tier takes only blocks seen at least `min_hits` times (blocks used once would only wear
// the SSD). Bounded: when it tracks `capacity` hashes every count is halved and zeros dropped
// (TinyLFU's aging), so old popularity fades. Not thread-safe: the TierManager's worker owns it.
#pragma once

#include <cstdint>
#include <unordered_map>

namespace turbine::kvtier {

class FrequencyFilter {
 public:
  FrequencyFilter(int min_hits, size_t capacity) : min_hits_(min_hits), capacity_(capacity) {}
  // Counts one sighting; returns the count.
  uint32_t see(uint64_t hash) {
    while (counts_.size() >= capacity_ && counts_.count(hash) == 0) age();
    return ++counts_[hash];
  }
  uint32_t count(uint64_t hash) const {
    auto it = counts_.find(hash);
    return it == counts_.end() ? 0 : it->second;
  }
  bool admits(uint64_t hash) const { return count(hash) >= static_cast<uint32_t>(min_hits_); }
  size_t size() const { return counts_.size(); }

 private:
  void age() {
    for (auto it = counts_.begin(); it != counts_.end();) {
      it->second /= 2;
      it = it->second == 0 ? counts_.erase(it) : std::next(it);
    }
  }
  const int min_hits_;
  const size_t capacity_;
  std::unordered_map<uint64_t, uint32_t> counts_;
};

}  // namespace turbine::kvtier
