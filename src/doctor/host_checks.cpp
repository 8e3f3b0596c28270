// Host checks: the CPU features the CPU backend dispatches on, memory, /dev/shm, open files.
#include <sys/resource.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "doctor/doctor.h"
#include "doctor/probes.h"

namespace turbine::doctor {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

}  // namespace

std::string format_bytes(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (bytes >= kGiB) return fmt::format("{:.1f} GiB", b / static_cast<double>(kGiB));
  if (bytes >= (1 << 20)) return fmt::format("{:.1f} MiB", b / (1 << 20));
  if (bytes >= (1 << 10)) return fmt::format("{:.1f} KiB", b / (1 << 10));
  return fmt::format("{} B", bytes);
}

std::optional<MemInfo> read_meminfo(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  MemInfo m;
  std::string key;
  int64_t kib = 0;
  std::string unit;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    if (!(s >> key >> kib)) continue;
    if (key == "MemTotal:") m.total_bytes = kib * 1024;
    if (key == "MemAvailable:") m.available_bytes = kib * 1024;
  }
  if (m.total_bytes <= 0) return std::nullopt;
  return m;
}

CheckResult check_cpu() {
  CheckResult c{"host.cpu", "CPU features", CheckStatus::kPass, "", {}};
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2");
  const bool fma = __builtin_cpu_supports("fma");
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl");
  c.details["avx2"] = avx2;
  c.details["fma"] = fma;
  c.details["avx512"] = avx512;  // avx512f + avx512dq + avx512vl, what the kernels need
  c.details["logical_cpus"] = static_cast<int64_t>(std::thread::hardware_concurrency());
  // The same rule as engine/cpu_kernels.cpp's dispatch.
  const char* kernels = avx512 ? "avx512" : (avx2 && fma) ? "avx2" : "scalar";
  c.details["cpu_kernels"] = kernels;
  if (std::string(kernels) == "scalar") {
    c.status = CheckStatus::kWarn;
    c.summary = "no AVX2+FMA: the CPU backend falls back to scalar kernels (several times slower)";
  } else {
    c.summary = fmt::format("{} logical CPUs; the CPU backend uses its {} kernels",
                            std::thread::hardware_concurrency(), kernels);
  }
  return c;
}

CheckResult check_memory() {
  CheckResult c{"host.memory", "Host memory", CheckStatus::kPass, "", {}};
  auto m = read_meminfo("/proc/meminfo");
  if (!m) {
    c.status = CheckStatus::kWarn;
    c.summary = "cannot read /proc/meminfo";
    return c;
  }
  c.details["total_bytes"] = m->total_bytes;
  c.details["available_bytes"] = m->available_bytes;
  c.summary = fmt::format("{} available of {}", format_bytes(m->available_bytes),
                          format_bytes(m->total_bytes));
  if (m->available_bytes < 2 * kGiB) {
    c.status = CheckStatus::kWarn;
    c.summary += " (under 2 GiB free: loading a model may swap or be killed)";
  }
  return c;
}

CheckResult check_shm(const std::string& path) {
  CheckResult c{"host.shm", "/dev/shm", CheckStatus::kPass, "", {}};
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) {
    c.status = CheckStatus::kWarn;
    c.summary = path + " is missing: NCCL and CUDA IPC between processes need shared memory";
    return c;
  }
  const int64_t size = static_cast<int64_t>(st.f_blocks) * static_cast<int64_t>(st.f_frsize);
  const int64_t free_b = static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
  c.details["path"] = path;
  c.details["size_bytes"] = size;
  c.details["free_bytes"] = free_b;
  c.summary = fmt::format("{} of {} free", format_bytes(free_b), format_bytes(size));
  // Docker's default is 64 MiB; NCCL needs far more for tensor parallelism (the chart mounts
  // 8 GiB, docs/DEPLOY.md).
  if (size < kGiB) {
    c.status = CheckStatus::kWarn;
    c.summary += " (under 1 GiB: raise it, e.g. `docker run --shm-size 8g`, for multi-GPU work)";
  }
  return c;
}

CheckResult check_open_files() {
  CheckResult c{"host.open_files", "Open-file limit", CheckStatus::kPass, "", {}};
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    c.status = CheckStatus::kWarn;
    c.summary = "getrlimit(RLIMIT_NOFILE) failed";
    return c;
  }
  auto as_i64 = [](rlim_t v) { return v == RLIM_INFINITY ? int64_t{-1} : static_cast<int64_t>(v); };
  c.details["soft"] = as_i64(rl.rlim_cur);
  c.details["hard"] = as_i64(rl.rlim_max);
  c.summary = fmt::format(
      "soft {}, hard {}",
      rl.rlim_cur == RLIM_INFINITY ? std::string("unlimited") : std::to_string(rl.rlim_cur),
      rl.rlim_max == RLIM_INFINITY ? std::string("unlimited") : std::to_string(rl.rlim_max));
  // Every streaming client holds a socket, and the frontend holds pools to each worker.
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 65536) {
    c.status = CheckStatus::kWarn;
    c.summary += rl.rlim_max == RLIM_INFINITY || rl.rlim_max > rl.rlim_cur
                     ? " (under 65536: about that many concurrent connections at most; raise it "
                       "with `ulimit -n` up to the hard limit)"
                     : " (under 65536: about that many concurrent connections at most; raise the "
                       "hard limit: LimitNOFILE= in systemd, `docker run --ulimit "
                       "nofile=1048576`)";
  }
  return c;
}

}  // namespace turbine::doctor
