// FP8 (E4M3) quantization helpers: activation rows as a checkpoint's input scheme says, weights
// per output channel, and `--quantization fp8` over a loaded model.
#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "model/dtype.h"
#include "model/loaded_model.h"

namespace turbine::model {
namespace {

float abs_max(const float* x, int64_t n) {
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

// Runs fn(begin, end) over [0, n) split across the hardware threads (loader work, once).
template <typename F>
void parallel_rows(int64_t n, F&& fn) {
  const int hw = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int n_threads = static_cast<int>(std::min<int64_t>(hw, std::max<int64_t>(1, n / 64)));
  if (n_threads <= 1) {
    fn(int64_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t step = (n + n_threads - 1) / n_threads;
  for (int k = 0; k < n_threads; ++k) {
    const int64_t b = k * step, e = std::min(n, b + step);
    if (b < e) pool.emplace_back([&fn, b, e] { fn(b, e); });
  }
  for (auto& t : pool) t.join();
}

}  // namespace

void fp8_quantize_dequantize(float* x, int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i) x[i] = e4m3_to_f32(f32_to_e4m3(x[i] / s)) * s;
}

void quantize_input_row(const InputQuant& q, float* x, int64_t n) {
  switch (q.kind) {
    case InputQuant::Kind::kNone: return;
    case InputQuant::Kind::kStatic: fp8_quantize_dequantize(x, n, q.scale); return;
    case InputQuant::Kind::kDynamicPerToken:
      fp8_quantize_dequantize(x, n, std::max(abs_max(x, n) / kE4M3Max, kFp8MinScale));
      return;
    case InputQuant::Kind::kDynamicPerGroup: {
      const int64_t g = q.group > 0 ? q.group : n;
      for (int64_t c0 = 0; c0 < n; c0 += g) {
        const int64_t len = std::min(g, n - c0);
        fp8_quantize_dequantize(x + c0, len,
                                std::max(abs_max(x + c0, len) / kE4M3Max, kFp8MinScale));
      }
      return;
    }
  }
}

void quantize_fp8_per_channel(const float* w, int64_t rows, int64_t cols, uint8_t* q, float* scales,
                              float (*round_scale)(float)) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* wr = w + r * cols;
    const float amax = abs_max(wr, cols);
    float s = amax > 0.0f ? amax / kE4M3Max : 1.0f;
    if (round_scale != nullptr) s = round_scale(s);
    scales[r] = s;
    uint8_t* qr = q + r * cols;
    for (int64_t c = 0; c < cols; ++c) qr[c] = f32_to_e4m3(wr[c] / s);
  }
}

Status quantize_linear_fp8(LoadedModel& model) {
  for (LayerWeights& L : model.mutable_weights().layers) {
    for (TensorView* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
      if (!t->present() || t->dtype == DType::kF8E4M3) continue;
      const int64_t rows = t->rows, cols = t->cols;
      std::vector<uint8_t> q(static_cast<size_t>(rows * cols));
      std::vector<float> scales(static_cast<size_t>(rows));
      const TensorView src = *t;
      parallel_rows(rows, [&](int64_t r0, int64_t r1) {
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = r0; r < r1; ++r) {
          dequantize_row(src, r, row.data());
          quantize_fp8_per_channel(row.data(), 1, cols, q.data() + r * cols, scales.data() + r);
        }
      });
      t->dtype = DType::kF8E4M3;
      t->data = model.own(std::move(q));
      t->size_bytes = static_cast<size_t>(rows * cols);
      t->scales = Fp8Scales{model.own(std::move(scales)), 1, cols};
      t->input_quant.kind = InputQuant::Kind::kDynamicPerToken;
    }
  }
  return Status::ok();
}

}  // namespace turbine::model
