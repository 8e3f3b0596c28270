#include "planner/capacity.h"

#include <algorithm>
#include <limits>

namespace turbine::planner {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double md1_ttft(double service_s, double per_worker_rate) {
  const double rho = per_worker_rate * service_s;
  if (rho >= 1.0) return kInf;
  return service_s + rho * service_s / (2.0 * (1.0 - rho));
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

double estimate_prefill_ttft(const Profile& p, const Load& load, int n) {
  if (n <= 0) return kInf;
  return md1_ttft(p.prefill_seconds(load.isl), load.rate / n);
}

double estimate_decode_itl(const Profile& p, const Load& load, int n) {
  if (n <= 0) return kInf;
  return itl_at_throughput(p, load.rate * load.osl / n, context_of(load));
}

LatencyEstimate estimate_aggregated(const Profile& p, const Load& load, int n) {
  if (n <= 0) return {kInf, kInf};
  const double s = p.prefill_seconds(load.isl);
  const double per_worker = load.rate / n;
  const double f = per_worker * s;  // share of time spent prefilling
  LatencyEstimate e;
  e.ttft_s = md1_ttft(s, per_worker);
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
