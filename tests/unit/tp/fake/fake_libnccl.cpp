// A stand-in for libnccl.so.2 (the entry points tp/nccl.h resolves) over host memory: version
// 2.21.5, communicators of one rank (collectives copy send to recv). FAKE_NCCL_FAIL=1 makes
// ncclAllReduce fail with ncclInvalidArgument. Kept out of tp_test's glob (a subfolder).
#include <cstddef>
#include <cstdlib>
#include <cstring>

extern "C" {

typedef int ncclResult_t;
struct ncclComm {
  int nranks;
};
typedef ncclComm* ncclComm_t;
struct ncclUniqueId {
  char internal[128];
};

namespace {
ncclComm the_comm{1};
size_t type_bytes(int t) {
  switch (t) {
    case 0:
    case 1: return 1;
    case 6:
    case 9: return 2;
    case 4:
    case 5:
    case 8: return 8;
    default: return 4;
  }
}
}  // namespace

ncclResult_t ncclGetVersion(int* v) {
  *v = 22105;
  return 0;
}
ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  std::memset(id->internal, 7, sizeof id->internal);
  return 0;
}
ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId, int rank) {
  if (nranks != 1 || rank != 0) return 4;
  *comm = &the_comm;
  return 0;
}
ncclResult_t ncclCommInitAll(ncclComm_t* comms, int ndev, const int*) {
  if (ndev != 1) return 4;
  comms[0] = &the_comm;
  return 0;
}
ncclResult_t ncclCommDestroy(ncclComm_t) {
  return 0;
}
ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, int dtype, int op,
                           ncclComm_t, void*) {
  const char* fail = std::getenv("FAKE_NCCL_FAIL");
  if ((fail != nullptr && *fail == '1') || op != 0) return 4;
  if (send != recv) std::memcpy(recv, send, count * type_bytes(dtype));
  return 0;
}
ncclResult_t ncclAllGather(const void* send, void* recv, size_t count, int dtype, ncclComm_t,
                           void*) {
  if (send != recv) std::memcpy(recv, send, count * type_bytes(dtype));
  return 0;
}
ncclResult_t ncclBroadcast(const void* send, void* recv, size_t count, int dtype, int root,
                           ncclComm_t, void*) {
  if (root != 0) return 4;
  if (send != recv) std::memcpy(recv, send, count * type_bytes(dtype));
  return 0;
}
ncclResult_t ncclGroupStart() {
  return 0;
}
ncclResult_t ncclGroupEnd() {
  return 0;
}
const char* ncclGetErrorString(ncclResult_t r) {
  return r == 4 ? "invalid argument" : r == 0 ? "no error" : "unhandled error";
}
}
