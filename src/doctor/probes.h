// Helpers shared by the doctor's checks (not part of the module's interface).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace turbine::doctor {

std::string format_bytes(int64_t bytes);

struct MemInfo {
  int64_t total_bytes = 0;
  int64_t available_bytes = 0;
};
std::optional<MemInfo> read_meminfo(const std::string& path);

// What dlopen() of the CUDA driver (and runtime) tells about the GPUs.
struct GpuDevice {
  int index = 0;
  std::string name;
  int cc_major = 0;
  int cc_minor = 0;
  int64_t total_bytes = 0;
  int64_t free_bytes = -1;  // -1: unknown (no context could be made)
};
struct GpuProbe {
  bool driver_found = false;  // libcuda.so.1 loaded
  std::string error;          // why no device list (driver missing, cuInit failed, ...)
  int driver_version = 0;     // 12040 = 12.4
  int runtime_version = 0;    // 0: libcudart not found
  std::vector<GpuDevice> devices;
  // peer[i][j]: device i can access device j's memory directly.
  std::vector<std::vector<bool>> peer;
};
GpuProbe probe_gpus();

// Runs `argv` (argv[0] looked up in PATH) with stdin from /dev/null; returns its exit status and
// stdout (stderr appended after a marker when `merge_stderr`). Unavailable when it cannot start;
// DeadlineExceeded (and the child killed) after timeout_ms.
struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
Result<ProcessResult> run_process(const std::vector<std::string>& argv, int timeout_ms);

// Finds an executable: a path with '/' as is, else the first match in $PATH; empty if none.
std::string find_executable(const std::string& name);

}  // namespace turbine::doctor
