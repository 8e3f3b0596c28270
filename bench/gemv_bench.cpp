// Skinny projection bandwidth at decode batch sizes (issue 7): cuda::gemv with 1 to 16 warps
// per weight row against cuBLASLt (Gemm with the skinny path off) on the Llama-3.1-8B projection
// shapes, BF16. Each shape is timed over a ring of weight copies larger than L2, as a decode step
// reads every layer's weights once; results are checked against the cuBLASLt output.
//
//   gemv_bench [--rows 1,2,8] [--iters 200] [--ring-mib 512] [--tune] [--no-gemv]
//              [--no-fp8 | --fp8-only]
//
// FP8 (issue 28, first unless --no-fp8): E4M3 weights on the same shapes, the A8 gemv, cuBLASLt's
// FP8 GEMM and the weight-only W8A16 gemv's rows-per-warp x split grid (bench_fp8).
//
// Prints per (shape, m, variant): microseconds per call and the weight bytes read per second.
// --tune adds cuBLASLt's heuristic candidates as timed by Gemm::tune over the same ring
// ("lt#0" is the heuristic's own choice); --no-gemv leaves the gemv variants out.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda/fp8.h"
#include "cuda/gemm.h"
#include "cuda/kernels.h"

namespace {

using turbine::model::DType;

void die(const char* what, cudaError_t e) {
  if (e == cudaSuccess) return;
  std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
  std::exit(1);
}

void die(const char* what, const turbine::Status& st) {
  if (st.is_ok()) return;
  std::fprintf(stderr, "%s: %s\n", what, st.to_string().c_str());
  std::exit(1);
}

struct Shape {
  const char* name;
  int n, k;
};

std::vector<int> parse_list(const char* s) {
  std::vector<int> out;
  for (const char* p = s; *p;) {
    out.push_back(std::atoi(p));
    while (*p && *p != ',') ++p;
    if (*p == ',') ++p;
  }
  return out;
}

float bf16_to_float(__nv_bfloat16 v) {
  uint16_t bits;
  std::memcpy(&bits, &v, 2);
  const uint32_t f = static_cast<uint32_t>(bits) << 16;
  float out;
  std::memcpy(&out, &f, 4);
  return out;
}

struct Timer {
  cudaStream_t stream;
  cudaEvent_t t0, t1;
  // Microseconds per call of run(i) over `iters` calls after one warm-up pass over the ring.
  template <typename F>
  double time(int copies, int iters, F&& run) {
    for (int i = 0; i < copies; ++i) run(i);
    die("sync", cudaStreamSynchronize(stream));
    die("record", cudaEventRecord(t0, stream));
    for (int i = 0; i < iters; ++i) run(i);
    die("record", cudaEventRecord(t1, stream));
    die("sync", cudaEventSynchronize(t1));
    float ms = 0.0f;
    die("elapsed", cudaEventElapsedTime(&ms, t0, t1));
    return 1e3 * ms / iters;
  }
};

// FP8 E4M3 weights (issue 28), one byte per weight, per-row scales, on the same shapes: the A8
// gemv (activations pre-quantized to E4M3, as RMSNorm/SwiGLU leave them in a decode step),
// cuBLASLt's FP8 GEMM with its scale epilogue, and the weight-only W8A16 gemv over its rows per
// warp (r) and warps per row group (s); "w8a16" is the defaults. TB/s counts weight bytes.
// max_rel: against the default W8A16 output (the A8 and cuBLASLt rows differ from it by the
// activation quantization, a few 1e-2).
void bench_fp8(const std::vector<Shape>& shapes, const std::vector<int>& rows_list, int iters,
               size_t ring_bytes, Timer& timer) {
  using turbine::cuda::gemv_fp8;
  using turbine::cuda::gemv_w8a16;
  auto gemm = turbine::cuda::Gemm::create();
  if (!gemm.has_value()) die("cuBLASLt", gemm.status());
  gemm->use_gemv(false);
  cudaStream_t stream = timer.stream;
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> code(0, 253);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  const int max_m = *std::max_element(rows_list.begin(), rows_list.end());
  for (const Shape& s : shapes) {
    const size_t w_bytes = size_t{1} * s.n * s.k;
    const int copies = static_cast<int>(std::max<size_t>(2, (ring_bytes + w_bytes - 1) / w_bytes));
    std::vector<uint8_t> host(w_bytes);
    for (auto& c : host) {
      c = static_cast<uint8_t>(code(rng));
      if ((c & 0x7f) == 0x7f) c = 0x10;
    }
    std::vector<float> hs(static_cast<size_t>(s.n), 1.0f / 448.0f);
    std::vector<void*> ws(static_cast<size_t>(copies));
    for (auto& w : ws) {
      die("malloc w", cudaMalloc(&w, w_bytes));
      die("upload w", cudaMemcpy(w, host.data(), w_bytes, cudaMemcpyHostToDevice));
    }
    std::vector<__nv_bfloat16> hx(static_cast<size_t>(max_m) * s.k);
    for (auto& v : hx) v = __float2bfloat16(uni(rng));
    void *x, *xq, *xs, *wsc, *y, *y_ref;
    die("malloc", cudaMalloc(&x, hx.size() * 2));
    die("upload", cudaMemcpy(x, hx.data(), hx.size() * 2, cudaMemcpyHostToDevice));
    die("malloc", cudaMalloc(&xq, hx.size()));
    die("malloc", cudaMalloc(&xs, sizeof(float) * max_m));
    die("malloc", cudaMalloc(&wsc, sizeof(float) * s.n));
    die("upload", cudaMemcpy(wsc, hs.data(), sizeof(float) * s.n, cudaMemcpyHostToDevice));
    die("malloc", cudaMalloc(&y, size_t{2} * max_m * s.n));
    die("malloc", cudaMalloc(&y_ref, size_t{2} * max_m * s.n));
    auto* q = static_cast<uint8_t*>(xq);
    auto* xsf = static_cast<float*>(xs);
    const auto* wsf = static_cast<const float*>(wsc);
    for (int m : rows_list) {
      die("quantize",
          turbine::cuda::quantize_fp8_rows(stream, DType::kBF16, q, xsf, x, m, s.k, s.k, 0.0f));
      std::vector<__nv_bfloat16> ref(static_cast<size_t>(m) * s.n), got(ref.size());
      struct Variant {
        std::string name;
        int kind, split, rows;  // kind 0: w8a16, 1: a8 gemv, 2: cuBLASLt FP8
      };
      std::vector<Variant> variants = {{"w8a16", 0, 0, 0},
                                       {"a8", 1, 0, 0},
                                       {"a8/s4", 1, 4, 0},
                                       {"a8/s16", 1, 16, 0},
                                       {"lt-fp8", 2, 0, 0}};
      for (int r : {1, 2, 4})
        for (int sp : {1, 2, 4, 8})
          variants.push_back({"w8/r" + std::to_string(r) + "s" + std::to_string(sp), 0, sp, r});
      for (const Variant& v : variants) {
        void* out = v.name == "w8a16" ? y_ref : y;
        auto run = [&](int i) {
          const auto* w = static_cast<const uint8_t*>(ws[static_cast<size_t>(i % copies)]);
          if (v.kind == 0) {
            die("w8a16", gemv_w8a16(stream, DType::kBF16, x, w, wsf, out, m, s.n, s.k, false,
                                    v.split, v.rows));
          } else if (v.kind == 1) {
            die("gemv_fp8",
                gemv_fp8(stream, DType::kBF16, q, xsf, w, wsf, out, m, s.n, s.k, false, v.split));
          } else {
            die("matmul_fp8",
                gemm->matmul_fp8(stream, DType::kBF16, q, xsf, w, wsf, out, m, s.n, s.k));
          }
        };
        if (v.kind == 2) {  // cuBLASLt may have no FP8 algorithm for a shape: report, go on
          const auto* w0 = static_cast<const uint8_t*>(ws.front());
          const turbine::Status st =
              gemm->matmul_fp8(stream, DType::kBF16, q, xsf, w0, wsf, out, m, s.n, s.k);
          if (!st.is_ok()) {
            std::printf("%-8s %6d %6d %2d %-9s unavailable: %s\n", s.name, s.n, s.k, m,
                        v.name.c_str(), st.to_string().c_str());
            continue;
          }
        }
        const double us = timer.time(copies, iters, run);
        double max_rel = 0.0;
        if (out == y_ref) {
          die("download", cudaMemcpy(ref.data(), y_ref, ref.size() * 2, cudaMemcpyDeviceToHost));
        } else {
          die("download", cudaMemcpy(got.data(), y, got.size() * 2, cudaMemcpyDeviceToHost));
          double scale = 1e-6;
          for (auto r : ref)
            scale = std::max(scale, static_cast<double>(std::fabs(bf16_to_float(r))));
          for (size_t i = 0; i < got.size(); ++i)
            max_rel =
                std::max(max_rel, std::fabs(bf16_to_float(got[i]) - bf16_to_float(ref[i])) / scale);
        }
        std::printf("%-8s %6d %6d %2d %-9s %10.2f %8.3f %10.2e\n", s.name, s.n, s.k, m,
                    v.name.c_str(), us, static_cast<double>(w_bytes) / (us * 1e-6) / 1e12, max_rel);
        std::fflush(stdout);
      }
    }
    for (auto* w : ws) cudaFree(w);
    for (void* b : {x, xq, xs, wsc, y, y_ref}) cudaFree(b);
  }
  // gate|up + SwiGLU of a decode step with FP8 weights: W8A16 projection then swiglu, or fused
  // (gemv_w8a16_swiglu, rows per warp 2 or 4); A8 (gemv_fp8 then swiglu_fp8, as the A8 decode
  // path runs it).
  const int ffn = 14336, k = 4096;
  const size_t w_bytes = size_t{2} * ffn * k;
  const int copies = static_cast<int>(std::max<size_t>(2, (ring_bytes + w_bytes - 1) / w_bytes));
  std::vector<void*> ws(static_cast<size_t>(copies));
  for (auto& w : ws) {
    die("malloc w", cudaMalloc(&w, w_bytes));
    die("memset w", cudaMemset(w, 0x30, w_bytes));
  }
  void *x, *xq, *xs, *wsc, *gu, *h;
  die("malloc", cudaMalloc(&x, size_t{2} * 8 * k));
  die("memset", cudaMemset(x, 0x3c, size_t{2} * 8 * k));
  die("malloc", cudaMalloc(&xq, size_t{8} * ffn));
  die("malloc", cudaMalloc(&xs, sizeof(float) * 8));
  die("malloc", cudaMalloc(&wsc, sizeof(float) * 2 * ffn));
  die("memset", cudaMemset(wsc, 0, sizeof(float) * 2 * ffn));
  die("malloc", cudaMalloc(&gu, size_t{2} * 8 * 2 * ffn));
  die("malloc", cudaMalloc(&h, size_t{2} * 8 * ffn));
  auto* q = static_cast<uint8_t*>(xq);
  auto* xsf = static_cast<float*>(xs);
  const auto* wsf = static_cast<const float*>(wsc);
  die("quantize", turbine::cuda::quantize_fp8_rows(stream, DType::kBF16, q, xsf, x, 8, k, k, 0.0f));
  for (int m : rows_list) {
    for (int variant : {0, 2, 4, -1}) {  // 0: separate; 2, 4: fused with that many rows; -1: A8
      auto run = [&](int i) {
        const auto* w = static_cast<const uint8_t*>(ws[static_cast<size_t>(i % copies)]);
        auto* g = static_cast<uint8_t*>(gu);
        if (variant == 0) {
          die("w8a16", gemv_w8a16(stream, DType::kBF16, x, w, wsf, gu, m, 2 * ffn, k));
          die("swiglu", turbine::cuda::swiglu(stream, DType::kBF16, h, g, g + size_t{2} * ffn, m,
                                              ffn, 2 * ffn));
        } else if (variant > 0) {
          die("w8a16_swiglu", turbine::cuda::gemv_w8a16_swiglu(stream, DType::kBF16, x, w, wsf, h,
                                                               m, ffn, k, false, 0, variant));
        } else {
          die("gemv_fp8", gemv_fp8(stream, DType::kBF16, q, xsf, w, wsf, gu, m, 2 * ffn, k));
          die("swiglu_fp8", turbine::cuda::swiglu_fp8(stream, DType::kBF16, q, xsf, g,
                                                      g + size_t{2} * ffn, m, ffn, 2 * ffn, 0.0f));
        }
      };
      const double us = timer.time(copies, iters, run);
      const char* name = variant == 0   ? "w8-sep"
                         : variant == 2 ? "w8-fus/r2"
                         : variant == 4 ? "w8-fus/r4"
                                        : "a8-sep";
      std::printf("%-8s %6d %6d %2d %-9s %10.2f %8.3f\n", "gu8+swiglu", 2 * ffn, k, m, name, us,
                  static_cast<double>(w_bytes) / (us * 1e-6) / 1e12);
      std::fflush(stdout);
    }
  }
  for (auto* w : ws) cudaFree(w);
  for (void* b : {x, xq, xs, wsc, gu, h}) cudaFree(b);
  std::printf("default w8a16 (rows, split) per shape at m = 1:");
  for (const Shape& s : shapes)
    std::printf(" %s=(%d,%d)", s.name, turbine::cuda::w8a16_default_rows(1, false),
                turbine::cuda::w8a16_default_split(s.n, s.k));
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> rows = {1, 2, 8};
  int iters = 200;
  size_t ring_bytes = size_t{512} << 20;
  bool tune = false, gemv_variants = true, fp8 = true, bf16 = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--rows" && i + 1 < argc) {
      rows = parse_list(argv[++i]);
    } else if (a == "--iters" && i + 1 < argc) {
      iters = std::atoi(argv[++i]);
    } else if (a == "--tune") {
      tune = true;
    } else if (a == "--no-gemv") {
      gemv_variants = false;
    } else if (a == "--no-fp8") {
      fp8 = false;
    } else if (a == "--fp8-only") {
      bf16 = false;
    } else if (a == "--ring-mib" && i + 1 < argc) {
      ring_bytes = static_cast<size_t>(std::atoll(argv[++i])) << 20;
    } else {
      std::fprintf(stderr,
                   "usage: gemv_bench [--rows 1,2,8] [--iters N] [--ring-mib MiB] [--tune] "
                   "[--no-gemv] [--no-fp8 | --fp8-only]\n");
      return 2;
    }
  }
  const std::vector<Shape> shapes = {{"qkv", 6144, 4096},
                                     {"o", 4096, 4096},
                                     {"down", 4096, 14336},
                                     {"gate_up", 28672, 4096},
                                     {"lm_head", 128256, 4096}};
  auto gemm = turbine::cuda::Gemm::create();
  if (!gemm.has_value()) die("cuBLASLt", gemm.status());
  gemm->use_gemv(false);
  cudaStream_t stream;
  die("stream", cudaStreamCreate(&stream));
  cudaEvent_t t0, t1;
  die("event", cudaEventCreate(&t0));
  die("event", cudaEventCreate(&t1));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);

  std::printf("%-8s %6s %6s %2s %-9s %10s %8s %10s\n", "shape", "n", "k", "m", "variant", "us/call",
              "TB/s", "max_rel");
  if (fp8) {
    Timer timer{stream, t0, t1};
    bench_fp8(shapes, rows, iters, ring_bytes, timer);
  }
  if (!bf16) return 0;
  for (const Shape& s : shapes) {
    const size_t w_bytes = size_t{2} * s.n * s.k;
    const int copies = static_cast<int>(std::max<size_t>(2, (ring_bytes + w_bytes - 1) / w_bytes));
    std::vector<void*> ws(static_cast<size_t>(copies));
    // One random matrix, copied around the ring (values only matter for the check).
    std::vector<__nv_bfloat16> host(static_cast<size_t>(s.n) * s.k);
    for (auto& v : host) v = __float2bfloat16(uni(rng) * 0.05f);
    for (auto& w : ws) {
      die("malloc w", cudaMalloc(&w, w_bytes));
      die("upload w", cudaMemcpy(w, host.data(), w_bytes, cudaMemcpyHostToDevice));
    }
    const int max_m = *std::max_element(rows.begin(), rows.end());
    std::vector<__nv_bfloat16> hx(static_cast<size_t>(max_m) * s.k);
    for (auto& v : hx) v = __float2bfloat16(uni(rng));
    void *x, *y, *y_ref;
    die("malloc x", cudaMalloc(&x, hx.size() * 2));
    die("upload x", cudaMemcpy(x, hx.data(), hx.size() * 2, cudaMemcpyHostToDevice));
    die("malloc y", cudaMalloc(&y, size_t{2} * max_m * s.n));
    die("malloc y", cudaMalloc(&y_ref, size_t{2} * max_m * s.n));

    for (int m : rows) {
      // variant 0: cuBLASLt; 1 to 16: gemv with that many warps per row.
      std::vector<__nv_bfloat16> ref(static_cast<size_t>(m) * s.n), got(ref.size());
      for (int variant : {0, 1, 2, 4, 8, 16}) {
        if (variant > 0 && !gemv_variants) break;
        auto run = [&](int i, void* out) {
          void* w = ws[static_cast<size_t>(i % copies)];
          if (variant == 0) {
            die("matmul", gemm->matmul(stream, DType::kBF16, x, w, out, m, s.n, s.k));
          } else {
            die("gemv", turbine::cuda::gemv(stream, DType::kBF16, x, w, out, m, s.n, s.k,
                                            DType::kBF16, false, variant));
          }
        };
        for (int i = 0; i < copies; ++i) run(i, variant == 0 ? y_ref : y);  // warm-up
        die("sync", cudaStreamSynchronize(stream));
        die("record", cudaEventRecord(t0, stream));
        for (int i = 0; i < iters; ++i) run(i, variant == 0 ? y_ref : y);
        die("record", cudaEventRecord(t1, stream));
        die("sync", cudaEventSynchronize(t1));
        float ms = 0.0f;
        die("elapsed", cudaEventElapsedTime(&ms, t0, t1));
        const double us = 1e3 * ms / iters;
        double max_rel = 0.0;
        if (variant == 0) {
          die("download", cudaMemcpy(ref.data(), y_ref, ref.size() * 2, cudaMemcpyDeviceToHost));
        } else {
          die("download", cudaMemcpy(got.data(), y, got.size() * 2, cudaMemcpyDeviceToHost));
          double scale = 1e-6;
          for (auto v : ref)
            scale = std::max(scale, static_cast<double>(std::fabs(bf16_to_float(v))));
          for (size_t i = 0; i < got.size(); ++i) {
            const double d = std::fabs(bf16_to_float(got[i]) - bf16_to_float(ref[i]));
            max_rel = std::max(max_rel, d / scale);
          }
        }
        char name[16];
        std::snprintf(name, sizeof name, variant == 0 ? "cublaslt" : "gemv/%d", variant);
        std::printf("%-8s %6d %6d %2d %-9s %10.2f %8.3f %10.2e\n", s.name, s.n, s.k, m, name, us,
                    static_cast<double>(w_bytes) / (us * 1e-6) / 1e12, max_rel);
        std::fflush(stdout);
      }
      if (tune) {
        // On a Gemm of its own, so that the "cublaslt" rows stay the heuristic's choice.
        auto fresh = turbine::cuda::Gemm::create();
        if (!fresh.has_value()) die("cuBLASLt", fresh.status());
        fresh->use_gemv(false);
        std::vector<const void*> ring(ws.begin(), ws.end());
        auto us = fresh->tune(stream, DType::kBF16, x, ring, y, m, s.n, s.k, DType::kBF16,
                              turbine::cuda::Gemm::kMaxTuneCandidates, std::max(1, iters / copies));
        if (!us.has_value()) die("tune", us.status());
        for (size_t c = 0; c < us->size(); ++c) {
          const double t = (*us)[c];
          std::printf("%-8s %6d %6d %2d lt#%-6zu %10.2f %8.3f\n", s.name, s.n, s.k, m, c, t,
                      t > 0 ? static_cast<double>(w_bytes) / (t * 1e-6) / 1e12 : 0.0);
        }
        std::fflush(stdout);
      }
    }
    for (auto* w : ws) cudaFree(w);
    cudaFree(x);
    cudaFree(y);
    cudaFree(y_ref);
  }
  // gate|up + SwiGLU of one decode step: the projection then the swiglu kernel, or both in one
  // pass (gemv_swiglu), with 4 and 8 warps per row.
  {
    const int ffn = 14336, k = 4096;
    const size_t w_bytes = size_t{2} * 2 * ffn * k;
    const int copies = static_cast<int>(std::max<size_t>(2, (ring_bytes + w_bytes - 1) / w_bytes));
    std::vector<void*> ws(static_cast<size_t>(copies));
    for (auto& w : ws) {
      die("malloc w", cudaMalloc(&w, w_bytes));
      die("memset w", cudaMemset(w, 0x3c, w_bytes));
    }
    void *x, *gu, *h;
    die("malloc", cudaMalloc(&x, size_t{2} * 8 * k));
    die("memset", cudaMemset(x, 0x3c, size_t{2} * 8 * k));
    die("malloc", cudaMalloc(&gu, size_t{2} * 8 * 2 * ffn));
    die("malloc", cudaMalloc(&h, size_t{2} * 8 * ffn));
    for (int m : rows) {
      for (int variant : {4, 8, -4, -8}) {  // >0: gemv + swiglu; <0: fused
        auto run = [&](int i) {
          void* w = ws[static_cast<size_t>(i % copies)];
          if (variant > 0) {
            die("gemv", turbine::cuda::gemv(stream, DType::kBF16, x, w, gu, m, 2 * ffn, k,
                                            DType::kBF16, false, variant));
            auto* g = static_cast<uint8_t*>(gu);
            die("swiglu", turbine::cuda::swiglu(stream, DType::kBF16, h, g, g + size_t{2} * ffn, m,
                                                ffn, 2 * ffn));
          } else {
            die("gemv_swiglu", turbine::cuda::gemv_swiglu(stream, DType::kBF16, x, w, h, m, ffn, k,
                                                          false, -variant));
          }
        };
        for (int i = 0; i < copies; ++i) run(i);
        die("sync", cudaStreamSynchronize(stream));
        die("record", cudaEventRecord(t0, stream));
        for (int i = 0; i < iters; ++i) run(i);
        die("record", cudaEventRecord(t1, stream));
        die("sync", cudaEventSynchronize(t1));
        float ms = 0.0f;
        die("elapsed", cudaEventElapsedTime(&ms, t0, t1));
        const double us = 1e3 * ms / iters;
        const std::string name =
            (variant > 0 ? "sep/" : "fused/") + std::to_string(std::abs(variant));
        std::printf("%-8s %6d %6d %2d %-9s %10.2f %8.3f\n", "gu+swiglu", 2 * ffn, k, m,
                    name.c_str(), us, static_cast<double>(w_bytes) / (us * 1e-6) / 1e12);
        std::fflush(stdout);
      }
    }
    for (auto* w : ws) cudaFree(w);
    cudaFree(x);
    cudaFree(gu);
    cudaFree(h);
  }
  std::printf("default split per shape (gemv_split):");
  for (const Shape& s : shapes) std::printf(" %s=%d", s.name, turbine::cuda::gemv_split(s.n, s.k));
  std::printf("\n");
  return 0;
}
