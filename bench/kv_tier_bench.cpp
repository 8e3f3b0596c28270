// KV tier onboarding bandwidth against the copy limits measured in the same run (issue 24).
//
//   kv_tier_bench [--block-bytes 2097152] [--blocks 512] [--disk-path /tmp] [--reps 3]
//
// The default block is Llama-3.1-8B's (32 layers x 8 KV heads x 128 x BF16 x 16 positions x K,V
// = 2 MiB). Prints GB/s for:
//   host tier: blocks offered and loaded back through kvtier::TierManager vs one memcpy of the
//              same bytes (the limit); staged offers (the asynchronous offload's: adopted slots);
//   disk tier: offered (written) and loaded back (io_uring + O_DIRECT when available) vs a raw
//              O_DIRECT pread of the tier's file in 8 MiB pieces (the device's limit);
//   host -> device (CUDA builds): a tier load plus the engine's upload (memcpy into pinned
//              staging + cudaMemcpyAsync) vs cudaMemcpyAsync from pinned memory (the PCIe limit).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kvtier/tier_manager.h"

#ifdef TURBINE_HAVE_CUDA
#include <cuda_runtime.h>
#endif

using namespace turbine;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double gbps(double bytes, double s) {
  return s > 0 ? bytes / s / 1e9 : 0.0;
}

// Offers `n` blocks, waits for them to be stored, loads them back; returns (offer s, load s).
std::pair<double, double> round_trip(kvtier::TierManager& t, int n, int64_t bb, uint64_t base,
                                     kvtier::LoadBuffer* loaded) {
  std::vector<uint64_t> hashes;
  for (int i = 0; i < n; ++i) hashes.push_back(base + static_cast<uint64_t>(i));
  std::string bytes(static_cast<size_t>(n * bb), '\x5a');
  for (size_t i = 0; i < bytes.size(); i += 4096) bytes[i] = static_cast<char>(i >> 12);
  auto t0 = Clock::now();
  t.offer(hashes, std::move(bytes));
  t.drain();
  const double offer_s = seconds_since(t0);
  t0 = Clock::now();
  t.onboard(base, hashes);
  t.drain();
  const double load_s = seconds_since(t0);
  auto loads = t.take_loads();
  if (loads.empty() || loads[0].n_ok != n) std::fprintf(stderr, "load came back short\n");
  if (loaded != nullptr && !loads.empty()) *loaded = std::move(loads[0].bytes);
  return {offer_s, load_s};
}

}  // namespace

int main(int argc, char** argv) {
  int64_t bb = 2 << 20;
  int n = 512;
  int reps = 3;
  std::string disk = "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--block-bytes") bb = std::atoll(argv[i + 1]);
    if (a == "--blocks") n = std::atoi(argv[i + 1]);
    if (a == "--disk-path") disk = argv[i + 1];
    if (a == "--reps") reps = std::atoi(argv[i + 1]);
  }
  const double total = static_cast<double>(bb) * n;
  std::printf("kv_tier_bench: %d blocks of %lld bytes (%.2f GB), best of %d\n", n,
              static_cast<long long>(bb), total / 1e9, reps);

  std::shared_ptr<kvtier::HostMemory> memory;
#ifdef TURBINE_HAVE_CUDA
  struct Pinned final : kvtier::HostMemory {
    void* allocate(size_t b) override {
      void* p = nullptr;
      return cudaHostAlloc(&p, b, cudaHostAllocPortable) == cudaSuccess ? p : nullptr;
    }
    void release(void* p, size_t) override { cudaFreeHost(p); }
    const char* kind() const override { return "pinned"; }
  };
  memory = std::make_shared<Pinned>();
#endif
  // Host tier vs memcpy.
  {
    kvtier::TierOptions o;
    o.host_bytes = static_cast<int64_t>(total * 1.1) + (bb + 64) * 2;
    o.offload_inflight_bytes = (bb + 64) * n;  // every block staged at once (staged offers below)
    auto t = kvtier::TierManager::create(o, bb, memory);
    if (!t.has_value()) {
      std::fprintf(stderr, "%s\n", t.status().to_string().c_str());
      return 1;
    }
    std::vector<char> a(static_cast<size_t>(total), 1), b(static_cast<size_t>(total));
    double best_copy = 1e9, best_offer = 1e9, best_load = 1e9;
    for (int r = 0; r < reps; ++r) {
      auto t0 = Clock::now();
      std::memcpy(b.data(), a.data(), a.size());
      best_copy = std::min(best_copy, seconds_since(t0));
      auto [off, ld] = round_trip(**t, n, bb, 1000000ull * (r + 1), nullptr);
      best_offer = std::min(best_offer, off);
      best_load = std::min(best_load, ld);
    }
    std::printf("host tier (%s): offer %.2f GB/s, load %.2f GB/s; memcpy limit %.2f GB/s\n",
                memory ? memory->kind() : "pageable", gbps(total, best_offer),
                gbps(total, best_load), gbps(total, best_copy));
    // Staged offers (the asynchronous offload's path): slots the device filled (here: memset,
    // not timed) are adopted by the host tier, checksummed where they lie instead of copied; the
    // rate bounds how fast the tier worker hands staging slots back.
    double best_staged = 1e9;
    for (int r = 0; r < reps; ++r) {
      std::vector<uint8_t*> slots = (*t)->reserve_staging(static_cast<size_t>(n));
      if (slots.size() != static_cast<size_t>(n)) {
        std::fprintf(stderr, "staging: %zu of %d slots\n", slots.size(), n);
        (*t)->release_staging(slots);
        break;
      }
      std::vector<uint64_t> hashes;
      for (int i = 0; i < n; ++i) {
        hashes.push_back(5000000ull * (r + 1) + static_cast<uint64_t>(i));
        std::memset(slots[static_cast<size_t>(i)], 0x5a ^ i, static_cast<size_t>(bb));
      }
      auto t0 = Clock::now();
      (*t)->offer_staged(std::move(hashes), std::move(slots));
      (*t)->drain();
      best_staged = std::min(best_staged, seconds_since(t0));
    }
    std::printf("host tier staged offer (adopted, checksum only): %.2f GB/s\n",
                gbps(total, best_staged));
#ifdef TURBINE_HAVE_CUDA
    void* dev = nullptr;
    void* pinned = nullptr;
    cudaStream_t stream;
    if (cudaMalloc(&dev, static_cast<size_t>(total)) == cudaSuccess &&
        cudaHostAlloc(&pinned, static_cast<size_t>(total), 0) == cudaSuccess &&
        cudaStreamCreate(&stream) == cudaSuccess) {
      double best_h2d = 1e9, best_path = 1e9;
      for (int r = 0; r < reps; ++r) {
        auto t0 = Clock::now();
        cudaMemcpyAsync(dev, pinned, static_cast<size_t>(total), cudaMemcpyHostToDevice, stream);
        cudaStreamSynchronize(stream);
        best_h2d = std::min(best_h2d, seconds_since(t0));
        std::string loaded;
        (void)round_trip(**t, n, bb, 9000000ull * (r + 1), nullptr);
        t0 = Clock::now();
        std::vector<uint64_t> hashes;
        for (int i = 0; i < n; ++i) hashes.push_back(9000000ull * (r + 1) + i);
        (*t)->onboard(1, hashes);
        (*t)->drain();
        auto loads = (*t)->take_loads();
        if (!loads.empty()) {
          std::memcpy(pinned, loads[0].bytes.data(), loads[0].bytes.size());
          cudaMemcpyAsync(dev, pinned, loads[0].bytes.size(), cudaMemcpyHostToDevice, stream);
          cudaStreamSynchronize(stream);
        }
        best_path = std::min(best_path, seconds_since(t0));
      }
      std::printf(
          "host -> device: tier load + staged upload %.2f GB/s; pinned H2D limit %.2f GB/s\n",
          gbps(total, best_path), gbps(total, best_h2d));
    } else {
      std::printf("host -> device: no CUDA device\n");
    }
#endif
  }
  // Disk tier vs raw O_DIRECT reads of its file.
  {
    kvtier::TierOptions o;
    o.disk_path = disk;
    o.disk_bytes = static_cast<int64_t>(n + 2) * ((64 + bb + 4095) / 4096 * 4096);
    o.disk_min_hits = 1;
    auto t = kvtier::TierManager::create(o, bb);
    if (!t.has_value()) {
      std::fprintf(stderr, "%s\n", t.status().to_string().c_str());
      return 1;
    }
    const kvtier::TierStats st = (*t)->stats();
    double best_offer = 1e9, best_load = 1e9, best_raw = 1e9;
    for (int r = 0; r < reps; ++r) {
      auto [off, ld] = round_trip(**t, n, bb, 5000000ull * (r + 1), nullptr);
      best_offer = std::min(best_offer, off);
      best_load = std::min(best_load, ld);
      const int fd = ::open((*t)->disk_file_for_test().c_str(), O_RDONLY | O_DIRECT);
      if (fd >= 0) {
        const size_t piece = 8 << 20;
        void* buf = std::aligned_alloc(4096, piece);
        auto t0 = Clock::now();
        size_t got = 0;
        for (off_t at = 0;; at += static_cast<off_t>(piece)) {
          const ssize_t k = ::pread(fd, buf, piece, at);
          if (k <= 0) break;
          got += static_cast<size_t>(k);
        }
        best_raw = std::min(best_raw, seconds_since(t0) * total / std::max<double>(1.0, got));
        std::free(buf);
        ::close(fd);
      }
    }
    std::printf(
        "disk tier (%s, %s) under %s: write %.2f GB/s, load %.2f GB/s; raw O_DIRECT "
        "read %.2f GB/s\n",
        st.disk_io_uring ? "io_uring" : "pread/pwrite", st.disk_direct_io ? "O_DIRECT" : "buffered",
        disk.c_str(), gbps(total, best_offer), gbps(total, best_load), gbps(total, best_raw));
  }
  return 0;
}
