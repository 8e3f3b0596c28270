#include "kvtier/tier.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <xxhash.h>

namespace turbine::kvtier {
namespace {
constexpr uint64_t kChecksumSeed = 0x7ee5;
constexpr size_t kCopyPiece = size_t{64} << 10;  // fits L2 with room to spare
}  // namespace

const char* tier_name(Tier t) {
  switch (t) {
    case Tier::kDevice: return "device";
    case Tier::kHost: return "host";
    case Tier::kDisk: return "disk";
  }
  return "unknown";
}

Status TierOptions::validate() const {
  if (host_bytes < 0)
    return invalid_argument("--kv-offload-host-bytes must be >= 0", "kv_offload_host_bytes");
  if (disk_bytes < 0)
    return invalid_argument("--kv-offload-disk-bytes must be >= 0", "kv_offload_disk_bytes");
  if (!disk_path.empty() && disk_bytes == 0) {
    return invalid_argument("--kv-offload-disk-path needs --kv-offload-disk-bytes (the budget)",
                            "kv_offload_disk_bytes");
  }
  if (disk_path.empty() && disk_bytes > 0) {
    return invalid_argument("--kv-offload-disk-bytes needs --kv-offload-disk-path",
                            "kv_offload_disk_path");
  }
  if (disk_min_hits < 1)
    return invalid_argument("--kv-offload-disk-min-hits must be >= 1", "kv_offload_disk_min_hits");
  if (offload_inflight_bytes < 0) {
    return invalid_argument("--kv-offload-inflight-bytes must be >= 0",
                            "kv_offload_inflight_bytes");
  }
  return Status::ok();
}

uint64_t block_checksum(std::span<const uint8_t> bytes) {
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), kChecksumSeed);
}

ChecksumCopier::ChecksumCopier() : state_(XXH3_createState()) {}

ChecksumCopier::~ChecksumCopier() {
  XXH3_freeState(static_cast<XXH3_state_t*>(state_));
}

uint64_t ChecksumCopier::copy(std::span<const uint8_t> src, std::span<uint8_t> dst) {
  const size_t n = std::min(src.size(), dst.size());
  auto* st = static_cast<XXH3_state_t*>(state_);
  if (st == nullptr || XXH3_64bits_reset_withSeed(st, kChecksumSeed) != XXH_OK) {
    std::memcpy(dst.data(), src.data(), n);  // no state (out of memory): two passes
    return block_checksum(dst.first(n));
  }
  for (size_t at = 0; at < n; at += kCopyPiece) {
    const size_t k = std::min(kCopyPiece, n - at);
    std::memcpy(dst.data() + at, src.data() + at, k);
    XXH3_64bits_update(st, dst.data() + at, k);
  }
  return XXH3_64bits_digest(st);
}

namespace {

class PageableMemory final : public HostMemory {
 public:
  void* allocate(size_t bytes) override {
    // Page-aligned: the disk tier may read and write host slots with O_DIRECT.
    const size_t rounded = (bytes + 4095) / 4096 * 4096;
    return std::aligned_alloc(4096, rounded);
  }
  void release(void* p, size_t) override { std::free(p); }
  const char* kind() const override { return "pageable"; }
};

}  // namespace

std::shared_ptr<HostMemory> pageable_host_memory() {
  return std::make_shared<PageableMemory>();
}

int64_t host_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream s(line.substr(13));
    int64_t kb = -1;
    s >> kb;
    return kb < 0 ? -1 : kb * 1024;
  }
  return -1;
}

}  // namespace turbine::kvtier
