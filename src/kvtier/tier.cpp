#include "kvtier/tier.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <xxhash.h>

namespace turbine::kvtier {

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
  return Status::ok();
}

uint64_t block_checksum(std::span<const uint8_t> bytes) {
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), 0x7ee5);
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
