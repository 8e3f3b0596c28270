#include "kvtier/tier_manager.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

namespace turbine::kvtier {
namespace {

constexpr size_t kFilterCapacity = 1 << 20;  // hashes the frequency filter tracks
// Free load buffers kept for reuse: the tiers' budget, within [64 MiB, 1 GiB] (a load is at most
// one sequence's blocks; the pool keeps the larger buffers).
constexpr int64_t kMinRetainedLoadBytes = int64_t{64} << 20;
constexpr int64_t kMaxRetainedLoadBytes = int64_t{1} << 30;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Result<std::unique_ptr<TierManager>> TierManager::create(const TierOptions& options,
                                                         int64_t block_bytes,
                                                         std::shared_ptr<HostMemory> memory) {
  TURBINE_RETURN_IF_ERROR(options.validate());
  if (!options.enabled()) return invalid_argument("no KV offload tier is configured");
  if (block_bytes <= 0) {
    return invalid_argument("KV offloading needs a backend that exports KV blocks",
                            "kv_offload_host_bytes");
  }
  std::unique_ptr<TierManager> m(new TierManager(options, block_bytes));
  if (!memory) memory = pageable_host_memory();
  m->memory_ = memory;
  if (options.host_bytes > 0) {
    TURBINE_ASSIGN_OR_RETURN(m->host_,
                             HostPool::create(options.host_bytes, block_bytes, std::move(memory)));
  }
  if (!options.disk_path.empty()) {
    DiskTierOptions d;
    d.dir = options.disk_path;
    d.budget_bytes = options.disk_bytes;
    d.block_bytes = block_bytes;
    d.use_io_uring = options.use_io_uring;
    d.use_direct_io = options.use_direct_io;
    TURBINE_ASSIGN_OR_RETURN(m->disk_, DiskTier::open(d));
  }
  m->buffers_ = std::make_shared<LoadBufferPool>(static_cast<size_t>(std::clamp(
      options.host_bytes + options.disk_bytes, kMinRetainedLoadBytes, kMaxRetainedLoadBytes)));
  m->stats_.host_enabled = m->host_ != nullptr;
  m->stats_.disk_enabled = m->disk_ != nullptr;
  if (m->host_) {
    m->stats_.host.capacity_bytes = m->host_->capacity_blocks() * block_bytes;
  }
  if (m->disk_) {
    m->stats_.disk.capacity_bytes = m->disk_->capacity_blocks() * block_bytes;
    m->stats_.disk_io_uring = m->disk_->uses_io_uring();
    m->stats_.disk_direct_io = m->disk_->direct_io();
  }
  m->thread_ = std::thread([p = m.get()] { p->run(); });
  return m;
}

TierManager::TierManager(const TierOptions& options, int64_t block_bytes)
    : options_(options), block_bytes_(block_bytes), freq_(options.disk_min_hits, kFilterCapacity) {}

TierManager::~TierManager() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Slots may have changed hands between the arenas (HostPool::adopt): both go at once, after
  // the worker and while no copy into them is outstanding (the engine waits for its copies).
  host_.reset();
  if (staging_arena_ != nullptr) memory_->release(staging_arena_, staging_arena_bytes_);
}

std::vector<uint8_t*> TierManager::reserve_staging(size_t n) {
  std::vector<uint8_t*> out;
  if (n == 0) return out;
  std::lock_guard lock(mu_);
  if (staging_arena_ == nullptr && staging_arena_bytes_ != 0) return out;  // allocation failed
  if (staging_arena_ == nullptr) {
    // First use: the arena is allocated here rather than at start-up, so tiers fed by offer()
    // alone (the mock's placeholder blocks) never hold it.
    const size_t slot = HostPool::slot_bytes_for(block_bytes_);
    const size_t n_slots =
        std::max<size_t>(1, static_cast<size_t>(options_.offload_inflight_bytes) / slot);
    void* arena = memory_->allocate(n_slots * slot);
    if (arena == nullptr) {
      // Once: every later offload is dropped at once (the caller counts them, count_dropped);
      // the arena's size stays set without an arena to say so.
      spdlog::error("kv tiers: cannot allocate {} bytes of {} staging memory; offloads dropped",
                    n_slots * slot, memory_->kind());
      staging_arena_bytes_ = n_slots * slot;
      return out;
    }
    staging_arena_ = static_cast<uint8_t*>(arena);
    staging_arena_bytes_ = n_slots * slot;
    staging_free_.reserve(n_slots);
    for (size_t i = n_slots; i > 0; --i) staging_free_.push_back(staging_arena_ + (i - 1) * slot);
    stats_.offload_staging_blocks = static_cast<int64_t>(n_slots);
  }
  const size_t k = std::min(n, staging_free_.size());
  out.assign(staging_free_.end() - static_cast<std::ptrdiff_t>(k), staging_free_.end());
  staging_free_.resize(staging_free_.size() - k);
  stats_.offload_inflight_blocks += static_cast<int64_t>(k);
  return out;
}

void TierManager::release_staging(std::span<uint8_t* const> slots) {
  std::lock_guard lock(mu_);
  for (uint8_t* p : slots) {
    if (p == nullptr) continue;
    staging_free_.push_back(p);
    stats_.offload_inflight_blocks--;
  }
}

void TierManager::count_dropped(uint64_t n_blocks) {
  std::lock_guard lock(mu_);
  stats_.offload_dropped_blocks += n_blocks;
}

void TierManager::offer_staged(std::vector<uint64_t> hashes, std::vector<uint8_t*> slots,
                               std::vector<BlockMeta> meta) {
  if (hashes.size() != slots.size()) {
    spdlog::error("kv tiers: staged offer of {} slots for {} blocks ignored", slots.size(),
                  hashes.size());
    release_staging(slots);
    return;
  }
  if (hashes.empty()) return;
  {
    std::lock_guard lock(mu_);
    if (host_) {
      for (uint64_t h : hashes) index_[h] = Tier::kHost;
    }
    if (meta.size() == hashes.size()) {
      for (size_t i = 0; i < hashes.size(); ++i) meta_[hashes[i]] = meta[i];
    }
    stats_.offered_blocks += hashes.size();
    Job job;
    job.hashes = std::move(hashes);
    job.slots = std::move(slots);
    jobs_.push_back(std::move(job));
    stats_.queued_jobs = static_cast<int64_t>(jobs_.size());
  }
  cv_.notify_one();
}

void TierManager::pause_for_test(bool paused) {
  {
    std::lock_guard lock(mu_);
    paused_ = paused;
  }
  cv_.notify_all();
}

void TierManager::offer(std::vector<uint64_t> hashes, std::string bytes,
                        std::vector<BlockMeta> meta) {
  if (hashes.empty()) return;
  if (bytes.size() != hashes.size() * static_cast<size_t>(block_bytes_)) {
    spdlog::error("kv tiers: offer of {} bytes for {} blocks ignored", bytes.size(), hashes.size());
    return;
  }
  {
    std::lock_guard lock(mu_);
    // Indexed as host at once: a lookup that finds it queues its load behind this offer.
    if (host_) {
      for (uint64_t h : hashes) index_[h] = Tier::kHost;
    }
    if (meta.size() == hashes.size()) {
      for (size_t i = 0; i < hashes.size(); ++i) meta_[hashes[i]] = meta[i];
    }
    stats_.offered_blocks += hashes.size();
    jobs_.push_back(Job{false, 0, std::move(hashes), std::move(bytes), {}, {}});
    stats_.queued_jobs = static_cast<int64_t>(jobs_.size());
  }
  cv_.notify_one();
}

std::vector<Tier> TierManager::lookup(std::span<const uint64_t> hashes) {
  std::vector<Tier> out;
  std::lock_guard lock(mu_);
  for (uint64_t h : hashes) {
    if (host_) stats_.host.lookups++;
    if (disk_) stats_.disk.lookups++;
    auto it = index_.find(h);
    if (it == index_.end()) break;
    (it->second == Tier::kHost ? stats_.host : stats_.disk).hits++;
    out.push_back(it->second);
  }
  return out;
}

std::vector<bool> TierManager::holds(std::span<const uint64_t> hashes) const {
  std::vector<bool> out(hashes.size());
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < hashes.size(); ++i) out[i] = index_.count(hashes[i]) != 0;
  return out;
}

void TierManager::onboard(uint64_t load_id, std::vector<uint64_t> hashes) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(Job{true, load_id, std::move(hashes), {}, {}, {}});
    stats_.queued_jobs = static_cast<int64_t>(jobs_.size());
  }
  cv_.notify_one();
}

std::vector<TierLoad> TierManager::take_loads() {
  std::lock_guard lock(mu_);
  return std::exchange(loads_, {});
}

std::vector<TierChange> TierManager::take_changes() {
  std::lock_guard lock(mu_);
  return std::exchange(changes_, {});
}

void TierManager::set_notify(std::function<void()> notify) {
  std::lock_guard lock(mu_);
  notify_ = std::move(notify);
}

TierStats TierManager::stats() const {
  TierStats s;
  {
    std::lock_guard lock(mu_);
    s = stats_;
  }
  const LoadBufferPool::Stats b = buffers_->stats();
  s.load_buffer_allocations = b.allocations;
  s.load_buffer_reuses = b.reuses;
  return s;
}

void TierManager::drain() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return (jobs_.empty() && !busy_) || stopping_; });
}

void TierManager::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      busy_ = false;
      idle_cv_.notify_all();
      cv_.wait(lock, [&] { return stopping_ || (!paused_ && !jobs_.empty()); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      busy_ = true;
      stats_.queued_jobs = static_cast<int64_t>(jobs_.size());
    }
    if (job.load) {
      do_load(job);
      continue;
    }
    do_offer(job);
    // The owner publishes the tier changes as KV events: wake it.
    std::function<void()> notify;
    {
      std::lock_guard lock(mu_);
      if (!changes_.empty()) notify = notify_;
    }
    if (notify) notify();
  }
}

void TierManager::set_tier(uint64_t hash, Tier tier) {
  index_[hash] = tier;
  auto m = meta_.find(hash);
  changes_.push_back({hash, tier, true, m == meta_.end() ? BlockMeta{} : m->second});
  TierCounters& c = tier == Tier::kHost ? stats_.host : stats_.disk;
  c.offloaded_blocks++;
  c.offloaded_bytes += static_cast<uint64_t>(block_bytes_);
}

void TierManager::drop(uint64_t hash, Tier tier) {
  auto it = index_.find(hash);
  if (it != index_.end() && it->second == tier) index_.erase(it);
  changes_.push_back({hash, tier, false, {}});
  // Worker thread, so the tiers may be asked: a block in neither (nor offered again, which
  // indexes it at once) needs no meta any more.
  if (index_.count(hash) == 0 && !(host_ && host_->contains(hash)) &&
      !(disk_ && disk_->contains(hash)))
    meta_.erase(hash);
}

void TierManager::sync_disk_drops() {
  if (!disk_) return;
  std::vector<uint64_t> dropped = disk_->take_dropped();
  std::lock_guard lock(mu_);
  for (uint64_t h : dropped) drop(h, Tier::kDisk);
  stats_.disk.blocks = disk_->size_blocks();
  stats_.disk.used_bytes = disk_->size_blocks() * block_bytes_;
  stats_.disk.evicted_blocks = disk_->evicted();
  stats_.disk.errors = disk_->errors();
  stats_.disk.corrupt_blocks = disk_->corrupt();
}

void TierManager::demote_host_victim() {
  const auto victim = host_->lru();
  if (!victim) return;
  bool kept = false;
  if (disk_) {
    if (freq_.admits(*victim)) {
      const DiskBlock b{*victim, host_->peek(*victim)};
      disk_->store(std::span<const DiskBlock>(&b, 1));
      kept = disk_->contains(*victim);  // written now, or held there already
    } else {
      std::lock_guard lock(mu_);
      stats_.disk.filtered_blocks++;
    }
  }
  host_->erase(*victim);
  sync_disk_drops();  // before the victim is indexed on disk: its own slot may be reused
  std::lock_guard lock(mu_);
  stats_.host.evicted_blocks++;
  drop(*victim, Tier::kHost);
  if (kept) set_tier(*victim, Tier::kDisk);
}

uint8_t* TierManager::store_host(uint64_t hash, std::span<const uint8_t> bytes, uint8_t* slot) {
  if (host_->contains(hash)) {
    host_->touch(hash);
    std::lock_guard lock(mu_);
    index_[hash] = Tier::kHost;
    return slot;
  }
  if (host_->full()) demote_host_victim();
  uint8_t* back = slot;
  if (slot != nullptr) {
    back = host_->adopt(hash, slot);
  } else {
    host_->put(hash, bytes);
  }
  std::lock_guard lock(mu_);
  set_tier(hash, Tier::kHost);
  stats_.host.blocks = host_->size_blocks();
  stats_.host.used_bytes = host_->size_blocks() * block_bytes_;
  return back;
}

void TierManager::do_offer(Job& job) {
  const auto bb = static_cast<size_t>(block_bytes_);
  const bool staged = !job.slots.empty();
  std::vector<DiskBlock> to_disk;
  std::vector<uint8_t*> give_back;  // staging slots free again once this offer is done
  for (size_t i = 0; i < job.hashes.size(); ++i) {
    const uint64_t h = job.hashes[i];
    const std::span<const uint8_t> bytes(
        staged ? job.slots[i] : reinterpret_cast<const uint8_t*>(job.bytes.data()) + i * bb, bb);
    freq_.see(h);
    if (host_) {
      give_back.push_back(store_host(h, bytes, staged ? job.slots[i] : nullptr));
    } else if (disk_ && freq_.admits(h)) {
      to_disk.push_back({h, bytes});
    } else {
      std::lock_guard lock(mu_);
      if (disk_) stats_.disk.filtered_blocks++;
      stats_.offers_dropped++;
    }
  }
  if (!to_disk.empty()) {
    disk_->store(to_disk);
    sync_disk_drops();
    std::lock_guard lock(mu_);
    for (const DiskBlock& b : to_disk) {
      if (disk_->contains(b.hash)) set_tier(b.hash, Tier::kDisk);
    }
    stats_.disk.blocks = disk_->size_blocks();
    stats_.disk.used_bytes = disk_->size_blocks() * block_bytes_;
  }
  // Without a host tier every staging slot comes back as it went (the disk write copied it).
  if (staged && !host_) give_back = job.slots;
  release_staging(give_back);
}

void TierManager::do_load(Job& job) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto bb = static_cast<size_t>(block_bytes_);
  TierLoad out;
  out.load_id = job.load_id;
  out.n_requested = static_cast<int>(job.hashes.size());
  out.bytes = buffers_->take(job.hashes.size() * bb);
  const bool have_memory = out.bytes.size() == job.hashes.size() * bb;
  auto dst = [&](size_t i) {
    return std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.bytes.data()) + i * bb, bb);
  };
  // Host copies first (in order, until a block is not in the host tier), then one disk batch.
  size_t n = 0;
  double host_s = 0, disk_s = 0;
  uint64_t host_blocks = 0, disk_blocks = 0;
  std::vector<uint64_t> disk_hashes;
  std::vector<std::span<uint8_t>> disk_dst;
  std::vector<size_t> disk_at;
  Status error;
  if (!have_memory) error = Status(StatusCode::kResourceExhausted, "no memory for a KV tier load");
  for (; have_memory && n < job.hashes.size(); ++n) {
    const uint64_t h = job.hashes[n];
    if (host_ && host_->contains(h)) {
      const auto th = std::chrono::steady_clock::now();
      Status st = host_->get(h, dst(n));
      host_s += seconds_since(th);
      if (!st.is_ok()) {
        std::lock_guard lock(mu_);
        if (st.code() == StatusCode::kDataLoss) {
          stats_.host.corrupt_blocks++;
          drop(h, Tier::kHost);
        }
        error = st;
        break;
      }
      ++host_blocks;
    } else if (disk_ && disk_->contains(h)) {
      disk_hashes.push_back(h);
      disk_dst.push_back(dst(n));
      disk_at.push_back(n);
    } else {
      error = not_found("block left the tiers before it was loaded");
      break;
    }
  }
  if (!disk_hashes.empty()) {
    const auto td = std::chrono::steady_clock::now();
    std::vector<Status> st = disk_->load(disk_hashes, disk_dst);
    disk_s = seconds_since(td);
    for (size_t k = 0; k < st.size(); ++k) {
      if (st[k].is_ok()) continue;
      // Everything from the first failed block on is recomputed by the caller.
      if (disk_at[k] < n) {
        n = disk_at[k];
        error = st[k];
      }
      break;
    }
    for (size_t k = 0; k < st.size() && disk_at[k] < n; ++k) ++disk_blocks;
    sync_disk_drops();
  }
  out.n_ok = static_cast<int>(n);
  out.n_host = static_cast<int>(host_blocks);
  out.n_disk = static_cast<int>(disk_blocks);
  out.bytes.truncate(n * bb);
  if (!error.is_ok() && n < job.hashes.size()) {
    if (error.code() == StatusCode::kDataLoss || error.code() == StatusCode::kInternal)
      spdlog::warn("kv tiers: load stopped at block {} of {} ({}); recomputing the rest", n,
                   job.hashes.size(), error.to_string());
    out.error = error;
  }
  // Blocks read back were used again: they count towards the disk filter, and disk hits move up
  // to the host tier (the next hit is cheaper).
  for (size_t i = 0; i < n; ++i) freq_.see(job.hashes[i]);
  if (host_) {
    for (size_t k = 0; k < disk_hashes.size() && disk_at[k] < n; ++k)
      store_host(disk_hashes[k], dst(disk_at[k]));
  }
  out.seconds = seconds_since(t0);
  std::function<void()> notify;
  {
    std::lock_guard lock(mu_);
    stats_.host.onboarded_blocks += host_blocks;
    stats_.host.onboarded_bytes += host_blocks * bb;
    stats_.host.onboard_seconds += host_s;
    stats_.disk.onboarded_blocks += disk_blocks;
    stats_.disk.onboarded_bytes += disk_blocks * bb;
    stats_.disk.onboard_seconds += disk_s;
    stats_.loads++;
    if (out.n_ok < out.n_requested) stats_.loads_short++;
    loads_.push_back(std::move(out));
    notify = notify_;
  }
  if (notify) notify();
}

Status TierManager::corrupt_for_test(uint64_t hash) {
  drain();
  if (host_ && host_->contains(hash)) {
    host_->corrupt_for_test(hash);
    return Status::ok();
  }
  if (disk_ && disk_->contains(hash)) {
    const int fd = ::open(disk_->file_path().c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return internal_error("cannot open the disk tier's file");
    const off_t off = static_cast<off_t>(disk_->slot_offset_for_test(hash)) + 64;
    uint8_t b = 0;
    bool ok = ::pread(fd, &b, 1, off) == 1;
    b ^= 0x5a;
    ok = ok && ::pwrite(fd, &b, 1, off) == 1 && ::fsync(fd) == 0;
    ::close(fd);
    return ok ? Status::ok() : internal_error("cannot corrupt the block");
  }
  return not_found("block not in a tier");
}

std::string TierManager::disk_file_for_test() const {
  return disk_ ? disk_->file_path() : std::string();
}

}  // namespace turbine::kvtier
