// KV block copy bandwidth for disaggregated serving on GPUs (issue 8 point 4, issue 10), against
// the copy limit measured in the same run. Pools have the Llama-3.1-8B KV layout by default
// (32 layers, 8 KV heads x 128, BF16, 16-token blocks: 2 MiB per block, 32 KiB per chunk).
//
//   kv_copy_bench [--src-device 0] [--dst-device 0] [--pool-blocks 1024] [--blocks 16,128,512]
//
// Prints, for each transfer size: the contiguous device copy (cudaMemcpy D2D or peer: the
// limit), the pool-to-pool block copy in this process (cuda::copy_kv_blocks, what
// CudaBackend::copy_kv_blocks_from_pool runs), the same from a pool in ANOTHER process mapped
// with CUDA IPC (this binary re-executed as the exporter), and the host-staged path
// (pool -> packed -> pinned host -> packed -> pool, what read/write_kv_blocks run around TCP).
#include <cuda_runtime.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cuda/device.h"
#include "cuda/kv_copy.h"

extern char** environ;

namespace {

using turbine::cuda::KvBlockView;

struct Args {
  int src_device = 0, dst_device = 0;
  int pool_blocks = 1024, n_layers = 32;
  int64_t chunk = 16 * 8 * 128 * 2;  // block_size x kv_dim x bf16
  std::vector<int> sizes = {16, 128, 512};
  std::string child_handles;  // set in the exporter child: hex of two cudaIpcMemHandle_t
};

void die(const char* what, cudaError_t e) {
  if (e == cudaSuccess) return;
  std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
  std::exit(1);
}

std::string hex(const void* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    const auto b = static_cast<const unsigned char*>(p)[i];
    s += d[b >> 4];
    s += d[b & 15];
  }
  return s;
}

void unhex(const std::string& s, void* p) {
  for (size_t i = 0; i + 1 < s.size(); i += 2)
    static_cast<unsigned char*>(p)[i / 2] =
        static_cast<unsigned char>(std::stoi(s.substr(i, 2), nullptr, 16));
}

// Seconds per call of fn, averaged over reps after a warm-up, timed with events on `s`.
template <class Fn>
double timed(cudaStream_t s, Fn fn, int reps = 10) {
  fn();
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  cudaEventRecord(a, s);
  for (int i = 0; i < reps; ++i) fn();
  cudaEventRecord(b, s);
  die("sync", cudaEventSynchronize(b));
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / 1e3 / reps;
}

struct Pool {
  void* k = nullptr;
  void* v = nullptr;
};

Pool alloc_pool(const Args& a) {
  Pool p;
  const size_t half = static_cast<size_t>(a.pool_blocks) * a.n_layers * a.chunk;
  die("alloc K", cudaMalloc(&p.k, half));
  die("alloc V", cudaMalloc(&p.v, half));
  cudaMemset(p.k, 1, half);
  cudaMemset(p.v, 2, half);
  return p;
}

KvBlockView view(const Args& a, const Pool& p, const int32_t* ids) {
  return {p.k, p.v, int64_t{a.pool_blocks} * a.chunk, a.chunk, ids};
}

// Random distinct ids (source) and another permutation (destination), on the device.
int32_t* random_ids(const Args& a, int n, unsigned seed) {
  std::vector<int32_t> ids(static_cast<size_t>(a.pool_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(seed));
  int32_t* d = nullptr;
  die("ids", cudaMalloc(&d, static_cast<size_t>(n) * sizeof(int32_t)));
  cudaMemcpy(d, ids.data(), static_cast<size_t>(n) * sizeof(int32_t), cudaMemcpyHostToDevice);
  return d;
}

void ok(const turbine::Status& st) {
  if (st.is_ok()) return;
  std::fprintf(stderr, "%s\n", st.to_string().c_str());
  std::exit(1);
}

double gbps(int64_t bytes, double s) {
  return static_cast<double>(bytes) / s / 1e9;
}

// The child: maps the parent's pool (CUDA IPC) on dst_device and copies from it.
int run_child(const Args& a) {
  die("set device", cudaSetDevice(a.dst_device));
  cudaIpcMemHandle_t hk, hv;
  unhex(a.child_handles.substr(0, 2 * sizeof hk), &hk);
  unhex(a.child_handles.substr(2 * sizeof hk), &hv);
  Pool src;
  die("IPC open K", cudaIpcOpenMemHandle(&src.k, hk, cudaIpcMemLazyEnablePeerAccess));
  die("IPC open V", cudaIpcOpenMemHandle(&src.v, hv, cudaIpcMemLazyEnablePeerAccess));
  Pool dst = alloc_pool(a);
  cudaStream_t s;
  cudaStreamCreate(&s);
  for (int n : a.sizes) {
    int32_t* sid = random_ids(a, n, 1);
    int32_t* did = random_ids(a, n, 2);
    const int64_t bytes = int64_t{n} * a.n_layers * 2 * a.chunk;
    const double t = timed(s, [&] {
      ok(turbine::cuda::copy_kv_blocks(s, view(a, src, sid), view(a, dst, did), n, a.n_layers,
                                       a.chunk));
    });
    std::printf("%6d blocks %8.1f MiB  IPC pool copy (other process)    %8.1f GB/s  %8.3f ms\n", n,
                bytes / 1048576.0, gbps(bytes, t), t * 1e3);
    cudaFree(sid);
    cudaFree(did);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--src-device")
      a.src_device = std::stoi(v);
    else if (k == "--dst-device")
      a.dst_device = std::stoi(v);
    else if (k == "--pool-blocks")
      a.pool_blocks = std::stoi(v);
    else if (k == "--child")
      a.child_handles = v;
    else if (k == "--blocks") {
      a.sizes.clear();
      for (size_t p = 0; p < v.size();) {
        const size_t q = v.find(',', p);
        a.sizes.push_back(std::stoi(v.substr(p, q - p)));
        p = q == std::string::npos ? v.size() : q + 1;
      }
    } else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  for (int& n : a.sizes) n = std::min(n, a.pool_blocks);
  if (!a.child_handles.empty()) return run_child(a);

  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, a.src_device);
  std::printf(
      "source GPU %d (%s), destination GPU %d; pools of %d blocks x %d layers x K,V "
      "chunks of %lld bytes\n",
      a.src_device, prop.name, a.dst_device, a.pool_blocks, a.n_layers,
      static_cast<long long>(a.chunk));
  die("set device", cudaSetDevice(a.src_device));
  Pool src = alloc_pool(a);
  die("set device", cudaSetDevice(a.dst_device));
  if (a.dst_device != a.src_device) {
    const cudaError_t e = cudaDeviceEnablePeerAccess(a.src_device, 0);
    if (e != cudaSuccess && e != cudaErrorPeerAccessAlreadyEnabled) die("peer access", e);
    cudaGetLastError();
  }
  Pool dst = alloc_pool(a);
  cudaStream_t s;
  cudaStreamCreate(&s);
  const size_t max_bytes = static_cast<size_t>(*std::max_element(a.sizes.begin(), a.sizes.end())) *
                           a.n_layers * 2 * a.chunk;
  void* packed_src = nullptr;
  void* packed_dst = nullptr;
  void* host = nullptr;
  die("set device", cudaSetDevice(a.src_device));
  die("packed", cudaMalloc(&packed_src, max_bytes));
  die("set device", cudaSetDevice(a.dst_device));
  die("packed", cudaMalloc(&packed_dst, max_bytes));
  die("pinned", cudaMallocHost(&host, max_bytes));

  for (int n : a.sizes) {
    const int64_t bytes = int64_t{n} * a.n_layers * 2 * a.chunk;
    int32_t* sid = random_ids(a, n, 1);
    int32_t* did = random_ids(a, n, 2);
    const double t_limit = timed(s, [&] {
      die("memcpy", cudaMemcpyAsync(packed_dst, packed_src, static_cast<size_t>(bytes),
                                    cudaMemcpyDefault, s));
    });
    const double t_pool = timed(s, [&] {
      ok(turbine::cuda::copy_kv_blocks(s, view(a, src, sid), view(a, dst, did), n, a.n_layers,
                                       a.chunk));
    });
    const KvBlockView packed_in{packed_src, static_cast<uint8_t*>(packed_src) + a.chunk,
                                2 * a.chunk, int64_t{a.n_layers} * 2 * a.chunk, nullptr};
    const KvBlockView packed_out{packed_dst, static_cast<uint8_t*>(packed_dst) + a.chunk,
                                 2 * a.chunk, int64_t{a.n_layers} * 2 * a.chunk, nullptr};
    const double t_host = timed(s, [&] {
      ok(turbine::cuda::copy_kv_blocks(s, view(a, src, sid), packed_in, n, a.n_layers, a.chunk));
      cudaMemcpyAsync(host, packed_src, static_cast<size_t>(bytes), cudaMemcpyDeviceToHost, s);
      cudaMemcpyAsync(packed_dst, host, static_cast<size_t>(bytes), cudaMemcpyHostToDevice, s);
      ok(turbine::cuda::copy_kv_blocks(s, packed_out, view(a, dst, did), n, a.n_layers, a.chunk));
    });
    std::printf("%6d blocks %8.1f MiB  contiguous cudaMemcpy (limit)    %8.1f GB/s  %8.3f ms\n", n,
                bytes / 1048576.0, gbps(bytes, t_limit), t_limit * 1e3);
    std::printf(
        "%6d blocks %8.1f MiB  pool copy (same process)         %8.1f GB/s  %8.3f ms  "
        "(%.0f%% of the limit)\n",
        n, bytes / 1048576.0, gbps(bytes, t_pool), t_pool * 1e3, 100 * t_limit / t_pool);
    std::printf("%6d blocks %8.1f MiB  host-staged (D2H + H2D, pinned)  %8.1f GB/s  %8.3f ms\n", n,
                bytes / 1048576.0, gbps(bytes, t_host), t_host * 1e3);
    cudaFree(sid);
    cudaFree(did);
  }
  std::fflush(stdout);

  // The same pool copy from another process: export the source pool, run this binary as the
  // importer on the destination GPU.
  cudaIpcMemHandle_t hk, hv;
  die("IPC handle", cudaIpcGetMemHandle(&hk, src.k));
  die("IPC handle", cudaIpcGetMemHandle(&hv, src.v));
  std::string sizes;
  for (int n : a.sizes) sizes += (sizes.empty() ? "" : ",") + std::to_string(n);
  const std::string handles = hex(&hk, sizeof hk) + hex(&hv, sizeof hv);
  const std::string dd = std::to_string(a.dst_device), pb = std::to_string(a.pool_blocks);
  std::vector<char*> cargv = {argv[0],
                              const_cast<char*>("--dst-device"),
                              const_cast<char*>(dd.c_str()),
                              const_cast<char*>("--pool-blocks"),
                              const_cast<char*>(pb.c_str()),
                              const_cast<char*>("--blocks"),
                              const_cast<char*>(sizes.c_str()),
                              const_cast<char*>("--child"),
                              const_cast<char*>(handles.c_str()),
                              nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, cargv.data(), environ) != 0) {
    std::perror("posix_spawn");
    return 1;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
