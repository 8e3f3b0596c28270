// A stand-in for libcuda.so.1 (the driver API entry points `turbine doctor` dlopens): two
// 80 GiB sm_90 GPUs, 70 GiB free each, GPU 0 reaches GPU 1 directly but not the reverse.
// FAKE_CUDA_INIT_ERROR=<code> makes cuInit fail with that code (100: CUDA_ERROR_NO_DEVICE).
// C++ built as a shared library with C linkage; kept out of doctor_test's glob (a subfolder).
#include <cstddef>
#include <cstdlib>
#include <cstring>

extern "C" {

typedef int CUresult;
typedef int CUdevice;
typedef void* CUcontext;

namespace {
int ctx_token;
int current = -1;
}  // namespace

CUresult cuInit(unsigned flags) {
  static_cast<void>(flags);
  const char* e = getenv("FAKE_CUDA_INIT_ERROR");
  return e ? atoi(e) : 0;
}
CUresult cuDriverGetVersion(int* v) {
  *v = 12040;
  return 0;
}
CUresult cuDeviceGetCount(int* n) {
  *n = 2;
  return 0;
}
CUresult cuDeviceGet(CUdevice* d, int i) {
  *d = i;
  return i >= 0 && i < 2 ? 0 : 101;
}
CUresult cuDeviceGetName(char* name, int len, CUdevice d) {
  strncpy(name, d == 0 ? "Fake H100 80GB HBM3" : "Fake H100 80GB HBM3 (1)",
          static_cast<size_t>(len) - 1);
  return 0;
}
CUresult cuDeviceGetAttribute(int* v, int attr, CUdevice d) {
  static_cast<void>(d);
  *v = attr == 75 ? 9 : attr == 76 ? 0 : 0;
  return 0;
}
CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice d) {
  static_cast<void>(d);
  *bytes = size_t{80} << 30;
  return 0;
}
CUresult cuDevicePrimaryCtxRetain(CUcontext* c, CUdevice d) {
  *c = &ctx_token;
  current = d;
  return 0;
}
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) {
  static_cast<void>(d);
  return 0;
}
CUresult cuCtxSetCurrent(CUcontext c) {
  if (!c) current = -1;
  return 0;
}
CUresult cuMemGetInfo_v2(size_t* free_b, size_t* total) {
  if (current < 0) return 201; /* CUDA_ERROR_INVALID_CONTEXT */
  *free_b = size_t{70} << 30;
  *total = size_t{80} << 30;
  return 0;
}
CUresult cuDeviceCanAccessPeer(int* can, CUdevice a, CUdevice b) {
  *can = a == 0 && b == 1;
  return 0;
}
CUresult cuGetErrorString(CUresult rc, const char** s) {
  *s = rc == 100 ? "CUDA_ERROR_NO_DEVICE" : "CUDA_ERROR_UNKNOWN";
  return 0;
}

}  // extern "C"
