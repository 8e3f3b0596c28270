// GPUs through dlopen() of the CUDA driver API (libcuda.so.1) and runtime (libcudart): nothing is
// linked, so a CPU build runs the check too, and a host without a driver is `info`.
#include <dlfcn.h>

#include <cstdlib>
#include <initializer_list>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "doctor/doctor.h"
#include "doctor/probes.h"

namespace turbine::doctor {
namespace {

// The driver API's types as plain C types (no CUDA headers needed).
using CUresult = int;
using CUdevice = int;
using CUcontext = void*;
constexpr int kAttrCcMajor = 75;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
constexpr int kAttrCcMinor = 76;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR

// dlclose() on scope exit.
struct Library {
  void* handle = nullptr;
  ~Library() {
    if (handle) ::dlclose(handle);
  }
  template <typename Fn>
  Fn sym(const char* name) const {
    return handle ? reinterpret_cast<Fn>(::dlsym(handle, name)) : nullptr;
  }
};

void* open_first(std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (void* h = ::dlopen(n, RTLD_NOW | RTLD_LOCAL)) return h;
  }
  return nullptr;
}

}  // namespace

GpuProbe probe_gpus() {
  GpuProbe p;
  // TURBINE_DOCTOR_LIBCUDA points tests (and odd installs) at another driver library.
  const char* override_path = std::getenv("TURBINE_DOCTOR_LIBCUDA");
  Library cuda{override_path ? ::dlopen(override_path, RTLD_NOW | RTLD_LOCAL)
                             : open_first({"libcuda.so.1", "libcuda.so"})};
  if (!cuda.handle) {
    p.error = "no NVIDIA driver (libcuda.so.1 not found)";
    return p;
  }
  p.driver_found = true;
  auto cu_init = cuda.sym<CUresult (*)(unsigned)>("cuInit");
  auto cu_driver_version = cuda.sym<CUresult (*)(int*)>("cuDriverGetVersion");
  auto cu_count = cuda.sym<CUresult (*)(int*)>("cuDeviceGetCount");
  auto cu_get = cuda.sym<CUresult (*)(CUdevice*, int)>("cuDeviceGet");
  auto cu_name = cuda.sym<CUresult (*)(char*, int, CUdevice)>("cuDeviceGetName");
  auto cu_attr = cuda.sym<CUresult (*)(int*, int, CUdevice)>("cuDeviceGetAttribute");
  auto cu_total = cuda.sym<CUresult (*)(size_t*, CUdevice)>("cuDeviceTotalMem_v2");
  auto cu_retain = cuda.sym<CUresult (*)(CUcontext*, CUdevice)>("cuDevicePrimaryCtxRetain");
  auto cu_release = cuda.sym<CUresult (*)(CUdevice)>("cuDevicePrimaryCtxRelease_v2");
  if (!cu_release) cu_release = cuda.sym<CUresult (*)(CUdevice)>("cuDevicePrimaryCtxRelease");
  auto cu_set = cuda.sym<CUresult (*)(CUcontext)>("cuCtxSetCurrent");
  auto cu_mem = cuda.sym<CUresult (*)(size_t*, size_t*)>("cuMemGetInfo_v2");
  auto cu_peer = cuda.sym<CUresult (*)(int*, CUdevice, CUdevice)>("cuDeviceCanAccessPeer");
  auto cu_err = cuda.sym<CUresult (*)(CUresult, const char**)>("cuGetErrorString");
  if (!cu_init || !cu_count || !cu_get || !cu_attr || !cu_total) {
    p.error = "libcuda lacks the driver API entry points (too old a driver?)";
    return p;
  }
  auto describe = [&](CUresult rc) {
    const char* s = nullptr;
    if (cu_err && cu_err(rc, &s) == 0 && s) return fmt::format("{} ({})", s, rc);
    return fmt::format("CUDA error {}", rc);
  };
  if (CUresult rc = cu_init(0); rc != 0) {
    p.error = "cuInit failed: " + describe(rc);
    return p;
  }
  if (cu_driver_version) cu_driver_version(&p.driver_version);
  {
    Library rt{
        open_first({"libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0"})};
    if (auto v = rt.sym<int (*)(int*)>("cudaRuntimeGetVersion")) v(&p.runtime_version);
  }
  int n = 0;
  if (CUresult rc = cu_count(&n); rc != 0) {
    p.error = "cuDeviceGetCount failed: " + describe(rc);
    return p;
  }
  std::vector<CUdevice> handles(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    GpuDevice d;
    d.index = i;
    if (cu_get(&handles[i], i) != 0) continue;
    char name[256] = {};
    if (cu_name) cu_name(name, sizeof name, handles[i]);
    d.name = name;
    cu_attr(&d.cc_major, kAttrCcMajor, handles[i]);
    cu_attr(&d.cc_minor, kAttrCcMinor, handles[i]);
    size_t total = 0;
    cu_total(&total, handles[i]);
    d.total_bytes = static_cast<int64_t>(total);
    // Free memory needs a context: the primary one, released again at once.
    CUcontext ctx = nullptr;
    if (cu_retain && cu_set && cu_mem && cu_retain(&ctx, handles[i]) == 0) {
      size_t free_b = 0, total_b = 0;
      if (cu_set(ctx) == 0 && cu_mem(&free_b, &total_b) == 0)
        d.free_bytes = static_cast<int64_t>(free_b);
      cu_set(nullptr);
      if (cu_release) cu_release(handles[i]);
    }
    p.devices.push_back(std::move(d));
  }
  p.peer.assign(p.devices.size(), std::vector<bool>(p.devices.size(), false));
  for (size_t i = 0; i < p.devices.size(); ++i) {
    for (size_t j = 0; j < p.devices.size(); ++j) {
      int can = 0;
      if (i != j && cu_peer && cu_peer(&can, handles[i], handles[j]) == 0) p.peer[i][j] = can != 0;
    }
  }
  return p;
}

CheckResult check_gpus() {
  CheckResult c{"host.gpus", "GPUs", CheckStatus::kInfo, "", {}};
  const GpuProbe p = probe_gpus();
  auto version = [](int v) { return fmt::format("{}.{}", v / 1000, (v % 1000) / 10); };
  c.details["driver_found"] = p.driver_found;
  c.details["driver_cuda_version"] = p.driver_version ? version(p.driver_version) : "";
  c.details["runtime_cuda_version"] = p.runtime_version ? version(p.runtime_version) : "";
  boost::json::array devices;
  for (const GpuDevice& d : p.devices) {
    devices.push_back(
        boost::json::object{{"index", d.index},
                            {"name", d.name},
                            {"compute_capability", fmt::format("{}.{}", d.cc_major, d.cc_minor)},
                            {"total_bytes", d.total_bytes},
                            {"free_bytes", d.free_bytes}});
  }
  c.details["devices"] = std::move(devices);
  boost::json::array peer;
  bool all_peer = true;
  for (size_t i = 0; i < p.peer.size(); ++i) {
    boost::json::array row;
    for (size_t j = 0; j < p.peer[i].size(); ++j) {
      row.push_back(i == j || p.peer[i][j]);
      if (i != j && !p.peer[i][j]) all_peer = false;
    }
    peer.push_back(std::move(row));
  }
  c.details["peer_access"] = std::move(peer);
  if (p.devices.empty()) {
    // No GPU is a valid host for the CPU backend, not a failure.
    c.summary = p.error.empty() ? "no GPU found; the CPU backend will be used"
                                : p.error + "; the CPU backend will be used";
    c.details["error"] = p.error;
    return c;
  }
  c.status = CheckStatus::kPass;
  std::string list;
  bool too_old = false;
  for (const GpuDevice& d : p.devices) {
    if (!list.empty()) list += ", ";
    list += fmt::format("{}: {} (sm_{}{}, {} free of {})", d.index, d.name, d.cc_major, d.cc_minor,
                        d.free_bytes >= 0 ? format_bytes(d.free_bytes) : "?",
                        format_bytes(d.total_bytes));
    // The CUDA backend is built for sm_80 and sm_90a (CMakeLists.txt).
    if (d.cc_major < 8) too_old = true;
  }
  c.summary = fmt::format("driver CUDA {}, runtime {}; {}", version(p.driver_version),
                          p.runtime_version ? version(p.runtime_version) : "not found", list);
  if (p.devices.size() > 1) c.summary += all_peer ? "; peer access between all" : "";
  if (too_old) {
    c.status = CheckStatus::kWarn;
    c.summary += "; compute capability below 8.0 is not supported by the CUDA backend";
  } else if (p.devices.size() > 1 && !all_peer) {
    c.status = CheckStatus::kWarn;
    c.summary += "; some GPU pairs lack peer access (KV copies go through the host)";
  }
  return c;
}

}  // namespace turbine::doctor
