// A small open-addressing hash map (linear probing, backward-shift deletion) for the indexer's
// hot maps: one probe sequence in one array instead of a heap node per entry, which keeps
// find_matches at about one cache miss per block and an indexed block at a few dozen bytes.
// Keys and values are trivially copyable; no iterator stability across insert/erase.
// Not thread-safe (the owner serialises access).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace turbine::router {

// Murmur3's 64-bit finaliser: the keys are often hashes already, but some are small integers.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

struct U64Hash {
  uint64_t operator()(uint64_t k) const { return mix64(k); }
};

template <typename K, typename V, typename Hash = U64Hash>
class FlatMap {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return slots_.size(); }
  size_t memory_bytes() const { return slots_.capacity() * sizeof(Slot); }

  V* find(const K& key) {
    if (size_ == 0) return nullptr;
    for (size_t i = home(key);; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.key == key) return &s.value;
    }
  }
  const V* find(const K& key) const { return const_cast<FlatMap*>(this)->find(key); }
  // Starts loading the key's home slot (for a batch of independent lookups).
  void prefetch(const K& key) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(key)]);
  }

  // Inserts key -> value unless the key is present. Returns the stored value and whether it was
  // inserted. The pointer is valid until the next insert or erase.
  std::pair<V*, bool> insert(const K& key, const V& value) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    size_t i = home(key);
    for (; slots_[i].used; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return {&slots_[i].value, false};
    }
    slots_[i] = Slot{key, value, 1};
    ++size_;
    return {&slots_[i].value, true};
  }

  bool erase(const K& key) {
    if (size_ == 0) return false;
    size_t i = home(key);
    for (;; i = (i + 1) & mask_) {
      if (!slots_[i].used) return false;
      if (slots_[i].key == key) break;
    }
    // Backward shift: pull later entries of the probe run into the hole when that does not move
    // them in front of their home slot.
    for (size_t j = (i + 1) & mask_; slots_[j].used; j = (j + 1) & mask_) {
      const size_t h = home(slots_[j].key);
      if (((j - h) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i].used = 0;
    --size_;
    return true;
  }

  void clear() {
    slots_.clear();
    slots_.shrink_to_fit();
    size_ = 0;
    mask_ = 0;
  }

  void reserve(size_t n) {
    size_t cap = 16;
    while (cap * 3 < n * 4) cap *= 2;
    if (cap > slots_.size()) rehash(cap);
  }

  template <typename F>
  void for_each(F&& f) const {
    for (size_t i = 0; i < slots_.size(); ++i)
      if (slots_[i].used) f(slots_[i].key, slots_[i].value);
  }

 private:
  // The used flag lives in the slot (in the padding for u64 -> u32), so a probe touches one
  // cache line.
  struct Slot {
    K key;
    V value;
    uint8_t used;
  };
  size_t home(const K& key) const { return static_cast<size_t>(Hash{}(key)) & mask_; }
  void grow() { rehash(slots_.empty() ? 16 : slots_.size() * 2); }
  void rehash(size_t cap) {
    std::vector<Slot> old_slots(cap, Slot{K{}, V{}, 0});
    old_slots.swap(slots_);
    mask_ = cap - 1;
    size_ = 0;
    for (const Slot& s : old_slots)
      if (s.used) insert(s.key, s.value);
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
  size_t mask_ = 0;
};

}  // namespace turbine::router
