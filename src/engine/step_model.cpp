#include "engine/step_model.h"

#include <algorithm>
#include <cmath>

#include "engine/backend.h"

namespace turbine::engine {

namespace {

// Feature scales: a typical step of an 8B model at a few hundred sequences has each scaled
// feature near 1, which keeps the normal equations well conditioned and gives the prior weight
// the same meaning in every direction.
constexpr std::array<double, StepTimeModel::kFeatures> kScale = {1.0, 256.0, 262144.0, 1024.0,
                                                                 1048576.0};

}  // namespace

void StepShape::add_chunk(int pos, int n_tokens, bool decode) {
  ++n_seqs;
  kv_tokens += static_cast<int64_t>(pos) + n_tokens;
  if (decode) return;
  prefill_tokens += n_tokens;
  prefill_attention += static_cast<double>(n_tokens) * (pos + static_cast<double>(n_tokens) / 2.0);
}

StepShape step_shape(std::span<const SeqChunk> chunks) {
  StepShape s;
  for (const SeqChunk& c : chunks) {
    const int n = static_cast<int>(c.tokens.size());
    s.add_chunk(c.pos, n, n == 1 && c.want_logits);
  }
  return s;
}

double StepCoefficients::predict_ms(const StepShape& s) const {
  return base_ms + per_seq_ms * s.n_seqs + per_kv_token_ms * static_cast<double>(s.kv_tokens) +
         per_prefill_token_ms * static_cast<double>(s.prefill_tokens) +
         attention_ms * s.prefill_attention;
}

double StepCoefficients::chunk_ms(int pos, int n_tokens, bool decode) const {
  StepShape s;
  s.add_chunk(pos, n_tokens, decode);
  return predict_ms(s) - base_ms;
}

int StepCoefficients::max_prefill_tokens(int pos, double allowance_ms, int max_tokens) const {
  if (max_tokens <= 0) return 0;
  // chunk_ms(n) = c0 + c1 n + c2 n^2 with c0 = per_seq + kv * pos, c1 = kv + prefill +
  // attention * pos, c2 = attention / 2; all coefficients are >= 0, so it grows with n.
  const double c0 = per_seq_ms + per_kv_token_ms * pos;
  const double c1 = per_kv_token_ms + per_prefill_token_ms + attention_ms * pos;
  const double c2 = attention_ms / 2.0;
  const double room = allowance_ms - c0;
  if (room < c1 + c2) return 0;
  double n = 0;
  if (c2 > 0) {
    n = (-c1 + std::sqrt(c1 * c1 + 4.0 * c2 * room)) / (2.0 * c2);
  } else {
    n = c1 > 0 ? room / c1 : static_cast<double>(max_tokens);
  }
  if (!(n >= 1)) return 0;
  int k = n >= max_tokens ? max_tokens : static_cast<int>(n);
  // The root is computed in floating point: step back if it overshoots by a rounding error.
  while (k > 0 && chunk_ms(pos, k, false) > allowance_ms + 1e-9) --k;
  return k;
}

StepCoefficients default_step_prior() {
  // The simulated backend's defaults (mock::MockTiming), derived there from an H100's bandwidth
  // and FLOP rate for a Llama-3-8B in BF16.
  return {5.0, 0.02, 4.0e-5, 0.03, 1.3e-6};
}

bool StepModelOptions::valid() const {
  const StepCoefficients& p = prior;
  const double c[] = {p.base_ms, p.per_seq_ms, p.per_kv_token_ms, p.per_prefill_token_ms,
                      p.attention_ms};
  for (double v : c)
    if (!(v >= 0) || !std::isfinite(v)) return false;
  return forgetting > 0 && forgetting <= 1 && prior_weight > 0 && std::isfinite(prior_weight) &&
         outlier_ratio > 1 && std::isfinite(outlier_ratio);
}

StepTimeModel::StepTimeModel(StepModelOptions options)
    : options_(options), coefficients_(options.prior) {
  const StepCoefficients& p = options_.prior;
  const double c[] = {p.base_ms, p.per_seq_ms, p.per_kv_token_ms, p.per_prefill_token_ms,
                      p.attention_ms};
  for (int i = 0; i < kFeatures; ++i) prior_theta_[i] = c[i] * kScale[i];
}

StepTimeModel::Vec StepTimeModel::features(const StepShape& s) {
  const double raw[] = {1.0, static_cast<double>(s.n_seqs), static_cast<double>(s.kv_tokens),
                        static_cast<double>(s.prefill_tokens), s.prefill_attention};
  Vec x{};
  for (int i = 0; i < kFeatures; ++i) x[i] = raw[i] / kScale[i];
  return x;
}

void StepTimeModel::observe(const StepShape& s, double measured_ms) {
  if (!(measured_ms >= 0) || !std::isfinite(measured_ms)) return;
  const double predicted = predict_ms(s);
  if (predicted > 0) {
    measured_ms = std::clamp(measured_ms, predicted / options_.outlier_ratio,
                             predicted * options_.outlier_ratio);
  }
  const Vec x = features(s);
  const double f = options_.forgetting;
  for (int i = 0; i < kFeatures; ++i) {
    xty_[i] = f * xty_[i] + x[i] * measured_ms;
    for (int j = 0; j < kFeatures; ++j) xtx_[i][j] = f * xtx_[i][j] + x[i] * x[j];
  }
  ++samples_;
  solve();
}

void StepTimeModel::solve() {
  // (X'WX + w I) theta = X'Wy + w theta0, over the free coefficients; the others are 0.
  std::array<bool, kFeatures> free{};
  free.fill(true);
  Vec theta{};
  for (int round = 0; round < kFeatures; ++round) {
    int idx[kFeatures];
    int n = 0;
    for (int i = 0; i < kFeatures; ++i)
      if (free[i]) idx[n++] = i;
    double a[kFeatures][kFeatures + 1];
    for (int r = 0; r < n; ++r) {
      for (int c = 0; c < n; ++c)
        a[r][c] = xtx_[idx[r]][idx[c]] + (r == c ? options_.prior_weight : 0.0);
      a[r][n] = xty_[idx[r]] + options_.prior_weight * prior_theta_[idx[r]];
    }
    // Gaussian elimination with partial pivoting (the matrix is symmetric positive definite).
    for (int c = 0; c < n; ++c) {
      int p = c;
      for (int r = c + 1; r < n; ++r)
        if (std::fabs(a[r][c]) > std::fabs(a[p][c])) p = r;
      if (p != c)
        for (int k = 0; k <= n; ++k) std::swap(a[p][k], a[c][k]);
      if (std::fabs(a[c][c]) < 1e-300) return;  // cannot happen with w > 0; keep the old fit
      for (int r = c + 1; r < n; ++r) {
        const double m = a[r][c] / a[c][c];
        for (int k = c; k <= n; ++k) a[r][k] -= m * a[c][k];
      }
    }
    double sol[kFeatures];
    for (int r = n - 1; r >= 0; --r) {
      double v = a[r][n];
      for (int k = r + 1; k < n; ++k) v -= a[r][k] * sol[k];
      sol[r] = v / a[r][r];
    }
    theta.fill(0.0);
    bool negative = false;
    for (int r = 0; r < n; ++r) {
      if (sol[r] < 0) {
        free[idx[r]] = false;
        negative = true;
      } else {
        theta[idx[r]] = sol[r];
      }
    }
    if (!negative) break;
  }
  coefficients_ = {theta[0] / kScale[0], theta[1] / kScale[1], theta[2] / kScale[2],
                   theta[3] / kScale[3], theta[4] / kScale[4]};
}

}  // namespace turbine::engine
