// NCCL, loaded at run time: builds and CI need no NCCL package, and a machine without it fails a
// tensor-parallel start with a message naming the library.
//
// The declarations below are the few parts of NCCL's C ABI the project uses (written here, not
// copied from nccl.h): the opaque communicator, the 128-byte unique id, the result, data-type and
// reduction enums, and the functions. A CUDA stream is passed as `void*` (cudaStream_t is a
// pointer), so this header needs no CUDA headers and loads on CPU-only machines too.
//
// load_nccl() dlopens `libnccl.so.2` (or $TURBINE_NCCL_LIBRARY), resolves every function and
// keeps the table for the life of the process (immutable after the first successful load;
// thread-safe). It also sets NCCL_NVLS_ENABLE=0 before any communicator exists: NVLink multicast
// (NVLS) stays off on the machines this project runs on.
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"
#include "model/model.h"

namespace turbine::tp {

namespace nccl {
struct Comm;  // NCCL's ncclComm
using comm_t = Comm*;
struct UniqueId {
  char internal[128];
};
using result_t = int;  // ncclResult_t; 0 is success
inline constexpr result_t kSuccess = 0;
inline constexpr result_t kInProgress = 7;
using data_type_t = int;  // ncclDataType_t
inline constexpr data_type_t kInt32 = 2;
inline constexpr data_type_t kFloat16 = 6;
inline constexpr data_type_t kFloat32 = 7;
inline constexpr data_type_t kBfloat16 = 9;  // NCCL >= 2.10
using red_op_t = int;                        // ncclRedOp_t
inline constexpr red_op_t kSum = 0;
}  // namespace nccl

struct NcclApi {
  std::string path;  // what was loaded
  int version = 0;   // ncclGetVersion: major * 10000 + minor * 100 + patch (2.9+)
  nccl::result_t (*get_version)(int* version) = nullptr;
  nccl::result_t (*get_unique_id)(nccl::UniqueId* id) = nullptr;
  nccl::result_t (*comm_init_rank)(nccl::comm_t* comm, int nranks, nccl::UniqueId id,
                                   int rank) = nullptr;
  nccl::result_t (*comm_init_all)(nccl::comm_t* comms, int ndev, const int* devlist) = nullptr;
  nccl::result_t (*comm_destroy)(nccl::comm_t comm) = nullptr;
  nccl::result_t (*all_reduce)(const void* send, void* recv, size_t count, nccl::data_type_t dtype,
                               nccl::red_op_t op, nccl::comm_t comm, void* stream) = nullptr;
  nccl::result_t (*all_gather)(const void* send, void* recv, size_t send_count,
                               nccl::data_type_t dtype, nccl::comm_t comm, void* stream) = nullptr;
  nccl::result_t (*broadcast)(const void* send, void* recv, size_t count, nccl::data_type_t dtype,
                              int root, nccl::comm_t comm, void* stream) = nullptr;
  nccl::result_t (*group_start)() = nullptr;
  nccl::result_t (*group_end)() = nullptr;
  const char* (*get_error_string)(nccl::result_t result) = nullptr;

  // kInternal naming `what` and NCCL's error string; ok for success.
  Status check(nccl::result_t r, const char* what) const;
};

// The loaded library, or kUnavailable naming the library and why (not found, a missing symbol).
Result<const NcclApi*> load_nccl();

// NCCL's data type for a collective buffer of `dtype` (F32, F16, BF16); -1 for others.
nccl::data_type_t nccl_data_type(model::DType dtype);

}  // namespace turbine::tp
