#include "kvtier/disk_tier.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#ifdef TURBINE_HAVE_LIBURING
#include <liburing.h>
#endif

namespace turbine::kvtier {
namespace {

constexpr uint64_t kMagic = 0x3130305654424b54ull;  // "TKBTV001", little-endian
constexpr size_t kHeaderBytes = 64;
constexpr size_t kAlign = 4096;
constexpr size_t kBatch = 16;  // slots in flight per io_uring submission

struct SlotHeader {
  uint64_t magic;
  uint64_t hash;
  uint64_t checksum;
  uint64_t payload_bytes;
};
static_assert(sizeof(SlotHeader) <= kHeaderBytes);

std::atomic<uint64_t> g_file_counter{0};

Status disk_error(const std::string& what, int err) {
  return invalid_argument("--kv-offload-disk-path: " + what + ": " + std::strerror(err),
                          "kv_offload_disk_path");
}

}  // namespace

Result<std::unique_ptr<DiskTier>> DiskTier::open(const DiskTierOptions& o) {
  if (o.block_bytes <= 0) return invalid_argument("the KV layout has no bytes to offload");
  const size_t slot_bytes =
      (kHeaderBytes + static_cast<size_t>(o.block_bytes) + kAlign - 1) / kAlign * kAlign;
  const auto n_slots = static_cast<size_t>(o.budget_bytes / static_cast<int64_t>(slot_bytes));
  if (n_slots == 0) {
    return invalid_argument("--kv-offload-disk-bytes " + std::to_string(o.budget_bytes) +
                                " holds no KV block (a block takes " + std::to_string(slot_bytes) +
                                " bytes on disk)",
                            "kv_offload_disk_bytes");
  }
  std::error_code ec;
  std::filesystem::create_directories(o.dir, ec);
  if (ec) return disk_error("cannot create '" + o.dir + "'", ec.value());
  const uint64_t total = n_slots * slot_bytes;
  struct statvfs vfs {};
  if (::statvfs(o.dir.c_str(), &vfs) == 0) {
    const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (total > free_bytes) {
      return invalid_argument("--kv-offload-disk-bytes " + std::to_string(o.budget_bytes) +
                                  " is more than the free space under '" + o.dir + "' (" +
                                  std::to_string(free_bytes) + " bytes)",
                              "kv_offload_disk_bytes");
    }
  }
  std::unique_ptr<DiskTier> t(new DiskTier());
  t->path_ = (std::filesystem::path(o.dir) / ("turbine-kv-" + std::to_string(::getpid()) + "-" +
                                              std::to_string(g_file_counter++) + ".blocks"))
                 .string();
  const int flags = O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC;
  if (o.use_direct_io) {
    t->fd_ = ::open(t->path_.c_str(), flags | O_DIRECT, 0600);
    t->direct_ = t->fd_ >= 0;
    // tmpfs and some others refuse O_DIRECT (EINVAL): buffered I/O then.
    if (t->fd_ < 0 && errno != EINVAL) return disk_error("cannot create '" + t->path_ + "'", errno);
  }
  if (t->fd_ < 0) {
    t->fd_ = ::open(t->path_.c_str(), flags, 0600);
    if (t->fd_ < 0) return disk_error("cannot create '" + t->path_ + "'", errno);
  }
  if (int rc = ::posix_fallocate(t->fd_, 0, static_cast<off_t>(total)); rc != 0) {
    if (rc != EOPNOTSUPP && rc != EINVAL)
      return disk_error("cannot reserve " + std::to_string(total) + " bytes", rc);
    if (::ftruncate(t->fd_, static_cast<off_t>(total)) != 0)
      return disk_error("cannot size '" + t->path_ + "'", errno);
  }
  t->n_slots_ = n_slots;
  t->slot_bytes_ = slot_bytes;
  t->block_bytes_ = o.block_bytes;
  t->staging_ = static_cast<uint8_t*>(std::aligned_alloc(kAlign, kBatch * slot_bytes));
  if (t->staging_ == nullptr) return internal_error("disk tier: cannot allocate staging buffers");
  t->free_.reserve(n_slots);
  for (size_t s = n_slots; s > 0; --s) t->free_.push_back(s - 1);
#ifdef TURBINE_HAVE_LIBURING
  if (o.use_io_uring) {
    auto* ring = new io_uring;
    if (int rc = io_uring_queue_init(kBatch * 2, ring, 0); rc == 0) {
      t->ring_ = ring;
    } else {
      delete ring;
      spdlog::warn("kv tiers: io_uring unavailable ({}); the disk tier uses pread/pwrite",
                   std::strerror(-rc));
    }
  }
#endif
  spdlog::info("kv tiers: disk tier {} ({} blocks of {} bytes, {}, {})", t->path_, n_slots,
               slot_bytes, t->ring_ ? "io_uring" : "pread/pwrite",
               t->direct_ ? "O_DIRECT" : "buffered");
  return t;
}

DiskTier::~DiskTier() {
#ifdef TURBINE_HAVE_LIBURING
  if (ring_ != nullptr) {
    io_uring_queue_exit(static_cast<io_uring*>(ring_));
    delete static_cast<io_uring*>(ring_);
  }
#endif
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  std::free(staging_);
}

void DiskTier::run_batch(std::span<Io> ios) {
#ifdef TURBINE_HAVE_LIBURING
  if (ring_ != nullptr) {
    auto* ring = static_cast<io_uring*>(ring_);
    size_t queued = 0;
    for (size_t i = 0; i < ios.size(); ++i) {
      io_uring_sqe* sqe = io_uring_get_sqe(ring);
      if (sqe == nullptr) {
        ios[i].result = -EAGAIN;
        continue;
      }
      const auto off = static_cast<off_t>(ios[i].slot * slot_bytes_);
      if (ios[i].write)
        io_uring_prep_write(sqe, fd_, ios[i].buf, static_cast<unsigned>(slot_bytes_), off);
      else
        io_uring_prep_read(sqe, fd_, ios[i].buf, static_cast<unsigned>(slot_bytes_), off);
      io_uring_sqe_set_data64(sqe, i);
      ++queued;
    }
    int submitted = io_uring_submit(ring);
    if (submitted < 0) {
      for (Io& io : ios) io.result = submitted;
      return;
    }
    for (int n = 0; n < submitted; ++n) {
      io_uring_cqe* cqe = nullptr;
      if (int rc = io_uring_wait_cqe(ring, &cqe); rc < 0 || cqe == nullptr) {
        for (Io& io : ios) io.result = rc < 0 ? rc : -EIO;
        return;
      }
      const uint64_t i = io_uring_cqe_get_data64(cqe);
      if (i < ios.size()) ios[i].result = cqe->res;
      io_uring_cqe_seen(ring, cqe);
    }
    (void)queued;
    return;
  }
#endif
  for (Io& io : ios) {
    const auto off = static_cast<off_t>(io.slot * slot_bytes_);
    size_t done = 0;
    while (done < slot_bytes_) {
      const ssize_t n =
          io.write
              ? ::pwrite(fd_, io.buf + done, slot_bytes_ - done, off + static_cast<off_t>(done))
              : ::pread(fd_, io.buf + done, slot_bytes_ - done, off + static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    io.result = done == slot_bytes_ ? static_cast<int64_t>(done) : -(errno != 0 ? errno : EIO);
  }
}

size_t DiskTier::take_slot() {
  if (free_.empty()) {
    const uint64_t victim = lru_.front();
    erase(victim);
    ++evicted_;
  }
  const size_t slot = free_.back();
  free_.pop_back();
  return slot;
}

int DiskTier::store(std::span<const DiskBlock> blocks) {
  int stored = 0;
  std::vector<Io> ios;
  std::vector<uint64_t> hashes;
  for (size_t at = 0; at < blocks.size();) {
    ios.clear();
    hashes.clear();
    // A slot for each block of the batch: free, or an indexed victim (not one in this batch).
    for (; at < blocks.size() && ios.size() < kBatch && (!free_.empty() || !lru_.empty()); ++at) {
      const DiskBlock& b = blocks[at];
      if (b.bytes.size() != static_cast<size_t>(block_bytes_)) {
        ++errors_;
        continue;
      }
      if (auto it = index_.find(b.hash); it != index_.end()) {
        lru_.splice(lru_.end(), lru_, it->second.lru);
        continue;
      }
      if (std::find(hashes.begin(), hashes.end(), b.hash) != hashes.end()) continue;
      uint8_t* buf = staging_ + ios.size() * slot_bytes_;
      std::memset(buf, 0, kHeaderBytes);
      const uint64_t sum = copier_.copy(b.bytes, {buf + kHeaderBytes, b.bytes.size()});
      const SlotHeader h{kMagic, b.hash, sum, b.bytes.size()};
      std::memcpy(buf, &h, sizeof(h));
      std::memset(buf + kHeaderBytes + b.bytes.size(), 0,
                  slot_bytes_ - kHeaderBytes - b.bytes.size());
      ios.push_back({take_slot(), buf, true, 0});
      hashes.push_back(b.hash);
    }
    run_batch(ios);
    for (size_t i = 0; i < ios.size(); ++i) {
      if (ios[i].result != static_cast<int64_t>(slot_bytes_)) {
        ++errors_;
        spdlog::warn(
            "kv tiers: disk write failed ({}); block not offloaded",
            ios[i].result < 0 ? std::strerror(static_cast<int>(-ios[i].result)) : "short write");
        free_.push_back(ios[i].slot);
        continue;
      }
      lru_.push_back(hashes[i]);
      index_[hashes[i]] = Entry{ios[i].slot, std::prev(lru_.end())};
      ++stored;
    }
  }
  return stored;
}

std::vector<Status> DiskTier::load(std::span<const uint64_t> hashes,
                                   std::span<const std::span<uint8_t>> dst) {
  std::vector<Status> out(hashes.size());
  std::vector<Io> ios;
  std::vector<size_t> which;
  for (size_t at = 0; at < hashes.size();) {
    ios.clear();
    which.clear();
    for (; at < hashes.size() && ios.size() < kBatch; ++at) {
      auto it = index_.find(hashes[at]);
      if (it == index_.end() || dst[at].size() != static_cast<size_t>(block_bytes_)) {
        out[at] = not_found("block not in the disk tier");
        continue;
      }
      lru_.splice(lru_.end(), lru_, it->second.lru);
      ios.push_back({it->second.slot, staging_ + ios.size() * slot_bytes_, false, 0});
      which.push_back(at);
    }
    run_batch(ios);
    for (size_t i = 0; i < ios.size(); ++i) {
      const size_t k = which[i];
      if (ios[i].result != static_cast<int64_t>(slot_bytes_)) {
        ++errors_;
        out[k] = internal_error(
            std::string("disk tier read failed: ") +
            (ios[i].result < 0 ? std::strerror(static_cast<int>(-ios[i].result)) : "short read"));
        erase(hashes[k]);
        continue;
      }
      SlotHeader h{};
      std::memcpy(&h, ios[i].buf, sizeof(h));
      const std::span<const uint8_t> payload(ios[i].buf + kHeaderBytes,
                                             static_cast<size_t>(block_bytes_));
      // The checksum is taken while copying out (one pass): a mismatch leaves dst[k] unusable.
      if (h.magic != kMagic || h.hash != hashes[k] ||
          h.payload_bytes != static_cast<uint64_t>(block_bytes_) ||
          h.checksum != copier_.copy(payload, dst[k])) {
        ++corrupt_;
        out[k] = data_loss("disk tier: block checksum mismatch");
        erase(hashes[k]);
        continue;
      }
    }
  }
  return out;
}

void DiskTier::erase(uint64_t hash) {
  auto it = index_.find(hash);
  if (it == index_.end()) return;
  lru_.erase(it->second.lru);
  free_.push_back(it->second.slot);
  index_.erase(it);
  dropped_.push_back(hash);
}

int64_t DiskTier::slot_offset_for_test(uint64_t hash) const {
  auto it = index_.find(hash);
  if (it == index_.end()) return -1;
  return static_cast<int64_t>(it->second.slot * slot_bytes_);
}

}  // namespace turbine::kvtier
