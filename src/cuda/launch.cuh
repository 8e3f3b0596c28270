// Kernel launches with optional programmatic dependent launch (PDL, sm_90 and later).
//
// A kernel launched with `pdl` may start while the kernel before it on the stream is still
// finishing: its blocks get scheduled as soon as every block of the previous kernel has started
// (each kernel calls pdl_trigger() first thing), run what does not depend on earlier kernels
// (e.g. loading weights), and block in pdl_wait() until the previous kernel has completed and its
// writes are visible. Every kernel launched this way calls pdl_wait() before it reads anything
// an earlier kernel wrote and before it can exit, so completion stays ordered along the stream
// (kernel C that reads what A wrote is safe after B: B completes only after A). Without `pdl`,
// or on devices before sm_90, both calls are no-ops and the launch is an ordinary one.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <type_traits>

namespace turbine::cuda {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// kernel<<<grid, block, smem, stream>>>(args...), with the programmatic-serialization attribute
// when `pdl` (the caller checks the device supports it). Errors surface through
// cudaGetLastError / check_launch like those of <<<>>>.
template <typename... KArgs, typename... Args>
void launch_kernel(bool pdl, void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
                   cudaStream_t stream, Args... args) {
  if (!pdl) {
    kernel<<<grid, block, smem, stream>>>(static_cast<KArgs>(args)...);
    return;
  }
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  (void)cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...);
}

// Calls f(std::integral_constant<int, M>{}) for a skinny kernel's row count m in [1, 8] (the
// gemv kernels' kGemvMaxRows); nothing for other m (the callers check m first).
template <typename F>
void with_rows(int m, F&& f) {
  switch (m) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 6: return f(std::integral_constant<int, 6>{});
    case 7: return f(std::integral_constant<int, 7>{});
    case 8: return f(std::integral_constant<int, 8>{});
    default: return;
  }
}

}  // namespace turbine::cuda
