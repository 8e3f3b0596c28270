#include "tp/nccl.h"

#include <dlfcn.h>

#include <cstdlib>
#include <memory>
#include <mutex>

namespace turbine::tp {

Status NcclApi::check(nccl::result_t r, const char* what) const {
  if (r == nccl::kSuccess) return Status::ok();
  const char* why = get_error_string != nullptr ? get_error_string(r) : "unknown error";
  return internal_error(std::string("NCCL ") + what + ": " + why + " (" + std::to_string(r) + ")");
}

namespace {

template <typename Fn>
bool resolve(void* lib, const char* name, Fn& out, std::string& missing) {
  out = reinterpret_cast<Fn>(dlsym(lib, name));
  if (out == nullptr) missing += std::string(missing.empty() ? "" : ", ") + name;
  return out != nullptr;
}

Result<std::unique_ptr<NcclApi>> open_nccl() {
  const char* env = std::getenv("TURBINE_NCCL_LIBRARY");
  const std::string path = env != nullptr && *env != '\0' ? env : "libnccl.so.2";
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* err = dlerror();
    return Status(StatusCode::kUnavailable,
                  "tensor parallelism on CUDA needs NCCL: cannot load " + path + " (" +
                      (err != nullptr ? err : "not found") +
                      "); install NCCL 2 (Debian/Ubuntu: libnccl2) or point "
                      "TURBINE_NCCL_LIBRARY at libnccl.so.2",
                  "tensor_parallel_size");
  }
  auto api = std::make_unique<NcclApi>();
  api->path = path;
  std::string missing;
  resolve(lib, "ncclGetVersion", api->get_version, missing);
  resolve(lib, "ncclGetUniqueId", api->get_unique_id, missing);
  resolve(lib, "ncclCommInitRank", api->comm_init_rank, missing);
  resolve(lib, "ncclCommInitAll", api->comm_init_all, missing);
  resolve(lib, "ncclCommDestroy", api->comm_destroy, missing);
  resolve(lib, "ncclAllReduce", api->all_reduce, missing);
  resolve(lib, "ncclAllGather", api->all_gather, missing);
  resolve(lib, "ncclBroadcast", api->broadcast, missing);
  resolve(lib, "ncclGroupStart", api->group_start, missing);
  resolve(lib, "ncclGroupEnd", api->group_end, missing);
  resolve(lib, "ncclGetErrorString", api->get_error_string, missing);
  if (!missing.empty()) {
    dlclose(lib);
    return Status(StatusCode::kUnavailable,
                  path + " is not a usable NCCL 2 library: missing " + missing,
                  "tensor_parallel_size");
  }
  if (Status s = api->check(api->get_version(&api->version), "ncclGetVersion"); !s.is_ok())
    return s;
  // The library stays loaded for the life of the process (communicators may outlive callers).
  return api;
}

}  // namespace

Result<const NcclApi*> load_nccl() {
  static std::mutex mu;
  static std::unique_ptr<NcclApi> loaded;  // set once, never changed after
  std::lock_guard lock(mu);
  if (loaded) return static_cast<const NcclApi*>(loaded.get());
  // NVLink multicast (NVLS) stays off: set before the first communicator reads it.
  setenv("NCCL_NVLS_ENABLE", "0", 1);
  TURBINE_ASSIGN_OR_RETURN(loaded, open_nccl());
  return static_cast<const NcclApi*>(loaded.get());
}

nccl::data_type_t nccl_data_type(model::DType dtype) {
  switch (dtype) {
    case model::DType::kF32: return nccl::kFloat32;
    case model::DType::kF16: return nccl::kFloat16;
    case model::DType::kBF16: return nccl::kBfloat16;
    case model::DType::kQ8_0:
    case model::DType::kF8E4M3: return -1;
  }
  return -1;
}

}  // namespace turbine::tp
