// TierManager: the host and disk tiers behind one small interface the engine calls, with one
// worker thread that does every copy and every I/O.
//
//   offer(hashes, bytes)   a device block left the prefix cache: keep it in the host tier (the
//                          host tier's LRU block moves to disk if the frequency filter admits it)
//                          or, without a host tier, on disk (filter permitting).
//   lookup(hashes)         at admission: the tier of each LEADING block held below the device.
//   reserve_staging(n)     asynchronous offload (a CUDA copy stream): up to n pinned staging
//                          slots the backend copies evicted blocks into; fewer (or none) once
//                          --kv-offload-inflight-bytes is out: the caller drops the rest and
//                          calls count_dropped.
//   offer_staged(...)      the copies into those slots completed: store them like offer(); the
//                          host tier adopts each slot (no host copy), its free slot becomes the
//                          staging slot. release_staging gives back slots whose copy failed.
//   onboard(id, hashes)    read those blocks back, asynchronously; take_loads() returns finished
//                          loads (the bytes of the leading blocks read back intact; the rest is
//                          recomputed by the caller), and the notify callback wakes the caller.
//
// Threads: offer/reserve_staging/offer_staged/release_staging/lookup/onboard/take_* and stats()
// may be called from any thread (the engine
// thread in practice); they take `mu_` briefly. A staging slot belongs to the caller from
// reserve_staging until it passes it to offer_staged or release_staging (its copy must be complete
// by then), then to the worker until it is stored or dropped, then to the free list again. The
// worker thread alone owns HostPool, DiskTier and the frequency filter, and takes `mu_` only to
// move jobs, results and index updates. Jobs run in FIFO order, so a lookup that sees a block
// offered a moment ago (indexed as host at once) loads it after its offer was stored. The notify
// callback runs on the worker thread and must not block. Correctness: a block's bytes come back
// only with a matching checksum; a corrupt or unreadable block ends the load there (the caller
// recomputes from it on), is dropped and counted.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "kvtier/disk_tier.h"
#include "kvtier/frequency_filter.h"
#include "kvtier/host_pool.h"
#include "kvtier/load_buffer.h"
#include "kvtier/tier.h"

namespace turbine::kvtier {

struct TierLoad {
  uint64_t load_id = 0;
  int n_requested = 0;
  int n_ok = 0;      // leading blocks whose bytes are in `bytes` (n_ok * block_bytes)
  int n_host = 0;    // of those, read from the host tier
  int n_disk = 0;    // and from disk
  LoadBuffer bytes;  // the blocks, in request order (a pooled buffer: drop it when written)
  Status error;      // why the load stopped short (ok when n_ok == n_requested)
  double seconds = 0;
};

// What KV events need to name a block that enters a lower tier (kv::BlockStored): its local
// hash and its parent's chained hash, as the device's event said.
struct BlockMeta {
  uint64_t local_hash = 0;
  std::optional<uint64_t> parent_hash;
};

// A block entered (stored) or left a tier below the device: what KV events report.
struct TierChange {
  uint64_t hash = 0;
  Tier tier = Tier::kHost;
  bool stored = true;
  BlockMeta meta;  // as offered (zero when the offer carried none)
};

struct TierStats {
  TierCounters host;
  TierCounters disk;
  bool host_enabled = false;
  bool disk_enabled = false;
  bool disk_io_uring = false;
  bool disk_direct_io = false;
  uint64_t offered_blocks = 0;  // blocks offer() was given (each copied out of the device once)
  uint64_t offers_dropped = 0;  // offers with nowhere to go (no tier took the block)
  // Blocks an engine did not copy because the in-flight budget (staging slots) was used up
  // (count_dropped): turbine_kv_tier_offload_dropped_blocks_total.
  uint64_t offload_dropped_blocks = 0;
  int64_t offload_inflight_blocks = 0;   // gauge: staging slots out (copying or queued)
  int64_t offload_staging_blocks = 0;    // staging slots in all (the budget in blocks)
  uint64_t loads = 0;                    // onboard() calls finished
  uint64_t loads_short = 0;              // of those, stopped before the last block (recomputed)
  int64_t queued_jobs = 0;               // gauge: offers and loads not yet done
  uint64_t load_buffer_allocations = 0;  // loads whose result buffer was new memory
  uint64_t load_buffer_reuses = 0;       // loads that reused a pooled buffer
};

class TierManager {
 public:
  // Opens the tiers the options ask for (validate() first); `block_bytes` is one block's exported
  // size (Backend::kv_layout().bytes_per_block). Start-up errors name the flag.
  static Result<std::unique_ptr<TierManager>> create(const TierOptions& options,
                                                     int64_t block_bytes,
                                                     std::shared_ptr<HostMemory> memory = nullptr);
  ~TierManager();
  TierManager(const TierManager&) = delete;
  TierManager& operator=(const TierManager&) = delete;

  int64_t block_bytes() const { return block_bytes_; }
  const TierOptions& options() const { return options_; }

  // `bytes` holds hashes.size() blocks (block_bytes each), in order; `meta` is empty or one per
  // block (returned in TierChanges). A block whose parent is offered too comes after it.
  void offer(std::vector<uint64_t> hashes, std::string bytes, std::vector<BlockMeta> meta = {});
  // Up to `n` staging slots of block_bytes() each (64-byte aligned, in the tiers' HostMemory:
  // pinned on CUDA); fewer when the in-flight budget is used up.
  std::vector<uint8_t*> reserve_staging(size_t n);
  // As offer(), with block i's bytes in slots[i] (from reserve_staging; the copy into it done).
  void offer_staged(std::vector<uint64_t> hashes, std::vector<uint8_t*> slots,
                    std::vector<BlockMeta> meta = {});
  void release_staging(std::span<uint8_t* const> slots);
  // Blocks the caller did not offer for want of staging slots (counted in stats).
  void count_dropped(uint64_t n_blocks);
  // The tier of each leading block of `hashes` held in the host or disk tier (stops at the first
  // miss); counts lookups and hits.
  std::vector<Tier> lookup(std::span<const uint64_t> hashes);
  // Whether each block is held (or offered to the host tier and on its way) in a tier: the
  // engine copies only the others (offers are deduplicated before their bytes are read). Counts
  // nothing.
  std::vector<bool> holds(std::span<const uint64_t> hashes) const;
  void onboard(uint64_t load_id, std::vector<uint64_t> hashes);
  std::vector<TierLoad> take_loads();
  std::vector<TierChange> take_changes();
  // Called on the worker thread when a load finished (take_loads has something) or an offer
  // changed what the tiers hold (take_changes has something).
  void set_notify(std::function<void()> notify);
  TierStats stats() const;
  // Blocks until every job queued so far is done (tests, shutdown order).
  void drain();

  // Tests: while paused the worker takes no job (offers and their staging slots stay queued).
  void pause_for_test(bool paused);
  // Tests: corrupt a stored block's bytes where it lives (host memory, or its slot on disk).
  Status corrupt_for_test(uint64_t hash);
  std::string disk_file_for_test() const;

 private:
  TierManager(const TierOptions& options, int64_t block_bytes);
  struct Job {
    bool load = false;
    uint64_t load_id = 0;
    std::vector<uint64_t> hashes;
    std::string bytes;            // offers
    std::vector<uint8_t*> slots;  // staged offers: block i in slots[i] (bytes empty)
    std::vector<BlockMeta> meta;
  };
  void run();
  void do_offer(Job& job);
  void do_load(Job& job);
  // Moves the host tier's LRU block to disk (filter permitting) or drops it.
  void demote_host_victim();
  // Stores a block into the host tier: copied from `bytes`, or, with `slot`, adopted from that
  // staging slot. Returns the staging slot to put back on the free list (null: none).
  uint8_t* store_host(uint64_t hash, std::span<const uint8_t> bytes, uint8_t* slot = nullptr);
  // Index updates and changes, under mu_.
  void set_tier(uint64_t hash, Tier tier);
  void drop(uint64_t hash, Tier tier);
  void sync_disk_drops();

  const TierOptions options_;
  const int64_t block_bytes_;
  // Worker-thread state.
  std::unique_ptr<HostPool> host_;
  std::unique_ptr<DiskTier> disk_;
  FrequencyFilter freq_;
  std::shared_ptr<LoadBufferPool> buffers_;  // thread-safe; TierLoad::bytes come from here
  // The staging arena (offload_inflight_bytes, at least one slot) and its memory; released last.
  std::shared_ptr<HostMemory> memory_;
  uint8_t* staging_arena_ = nullptr;
  size_t staging_arena_bytes_ = 0;

  mutable std::mutex mu_;            // guards everything below
  std::condition_variable cv_;       // jobs queued / stopping
  std::condition_variable idle_cv_;  // a job finished (drain)
  std::deque<Job> jobs_;
  bool busy_ = false;
  bool stopping_ = false;
  bool paused_ = false;
  std::vector<uint8_t*> staging_free_;  // staging slots not out (from either arena, see adopt)
  std::unordered_map<uint64_t, Tier> index_;      // where each block below the device lives
  std::unordered_map<uint64_t, BlockMeta> meta_;  // of blocks held in a tier
  std::vector<TierLoad> loads_;
  std::vector<TierChange> changes_;
  std::function<void()> notify_;
  TierStats stats_;

  std::thread thread_;
};

}  // namespace turbine::kvtier
