#include "planner/capacity.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace turbine::planner {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Probability that a request waits in an M/M/c queue with offered load a = λ·E[S] < c.
double erlang_c(int c, double a) {
  double term = 1.0, below = 1.0;  // a^k / k!, summed for k < c
  for (int k = 1; k < c; ++k) {
    term *= a / k;
    below += term;
  }
  term *= a / c;
  const double top = term * c / (c - a);
  return top / (below + top);
}

// Mean TTFT of n workers fed by one least-loaded router: an M/G/c queue, its mean wait by the
// Lee-Longton approximation, M/M/c's (Erlang C) scaled by (1 + Cs²) / 2 (exact for c = 1:
// Pollaczek-Khinchine), plus the mean service.
double mgc_ttft(double s_mean, double s2_mean, double rate, int n) {
  const double a = rate * s_mean;
  if (a >= n) return kInf;
  const double cs2 = s2_mean / (s_mean * s_mean) - 1.0;
  return s_mean + erlang_c(n, a) * s_mean / (n - a) * (1.0 + cs2) / 2.0;
}

std::pair<double, double> moments(const Profile& p, const Load& load) {
  if (load.s_mean > 0) return {load.s_mean, std::max(load.s2_mean, load.s_mean * load.s_mean)};
  const double s = p.prefill_seconds(load.isl);
  return {s, s * s};
}

double context_of(const Load& load) {
  return load.isl + load.osl / 2.0;
}

}  // namespace

double itl_at_throughput(const Profile& p, double tokens_per_s, double context) {
  if (tokens_per_s <= 0) return p.decode_itl_seconds(1.0, context);
  double k_max = 0;
  for (const DecodeCurve& c : p.decode) k_max = std::max(k_max, c.points.back().concurrency);
  auto rate = [&](double k) { return k / p.decode_itl_seconds(k, context); };
  if (rate(k_max) < tokens_per_s) return kInf;
  // Output rate grows with k while ITL does (the curve is sublinear in k): bisect for the k
  // that produces `tokens_per_s`; below one sequence the worker idles between tokens.
  double lo = 0.0, hi = k_max;
  if (rate(1.0) >= tokens_per_s) return p.decode_itl_seconds(1.0, context);
  lo = 1.0;
  for (int i = 0; i < 60; ++i) {
    const double mid = 0.5 * (lo + hi);
    (rate(mid) < tokens_per_s ? lo : hi) = mid;
  }
  return p.decode_itl_seconds(hi, context);
}

std::pair<double, double> prefill_moments(const Profile& p,
                                          const std::vector<std::pair<double, double>>& buckets) {
  double n = 0, s1 = 0, s2 = 0, lower = 0;
  for (const auto& [le, count] : buckets) {
    const double isl = std::isinf(le) ? 1.5 * lower : (lower > 0 ? std::sqrt(lower * le) : le / 2);
    lower = std::isinf(le) ? lower : le;
    if (!(count > 0) || !(isl > 0)) continue;
    const double s = p.prefill_seconds(isl);
    n += count, s1 += count * s, s2 += count * s * s;
  }
  if (n <= 0) return {0, 0};
  return {s1 / n, s2 / n};
}

double estimate_prefill_ttft(const Profile& p, const Load& load, int n) {
  if (n <= 0) return kInf;
  const auto [s1, s2] = moments(p, load);
  return mgc_ttft(s1, s2, load.rate, n);
}

double estimate_decode_itl(const Profile& p, const Load& load, int n) {
  if (n <= 0) return kInf;
  return itl_at_throughput(p, load.rate * load.osl / n, context_of(load));
}

LatencyEstimate estimate_aggregated(const Profile& p, const Load& load, int n) {
  if (n <= 0) return {kInf, kInf};
  const auto [s1, s2] = moments(p, load);
  const double per_worker = load.rate / n;
  const double f = per_worker * s1;  // share of time spent prefilling
  LatencyEstimate e;
  e.ttft_s = mgc_ttft(s1, s2, load.rate, n);
  if (f >= 1.0) {
    e.itl_s = kInf;
    return e;
  }
  // Decode gets (1 - f) of the time, so during it the worker must run at a rate 1/(1 - f)
  // higher than the pool's share; its streams see every prompt step as a stall.
  const double decode_rate = per_worker * load.osl / (1.0 - f);
  e.itl_s = itl_at_throughput(p, decode_rate, context_of(load)) / (1.0 - f);
  return e;
}

}  // namespace turbine::planner
