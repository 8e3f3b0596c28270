#include "planner/predictor.h"

#include <algorithm>
#include <cmath>

namespace turbine::planner {
namespace {

class ConstantPredictor final : public Predictor {
 public:
  void observe(double v) override { last_ = v; }
  std::optional<double> predict() const override {
    if (!last_) return std::nullopt;
    return std::max(0.0, *last_);
  }

 private:
  std::optional<double> last_;
};

class LinearPredictor final : public Predictor {
 public:
  explicit LinearPredictor(int window) : window_(window) {}
  void observe(double v) override {
    values_.push_back(v);
    while (static_cast<int>(values_.size()) > window_) values_.pop_front();
  }
  std::optional<double> predict() const override {
    if (values_.empty()) return std::nullopt;
    const size_t n = values_.size();
    if (n == 1) return std::max(0.0, values_.back());
    // x = 0..n-1; the prediction is at x = n.
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t i = 0; i < n; ++i) {
      const double x = static_cast<double>(i), y = values_[i];
      sx += x, sy += y, sxx += x * x, sxy += x * y;
    }
    const double dn = static_cast<double>(n);
    const double denom = dn * sxx - sx * sx;
    const double slope = denom != 0 ? (dn * sxy - sx * sy) / denom : 0.0;
    const double intercept = (sy - slope * sx) / dn;
    return std::max(0.0, intercept + slope * dn);
  }

 private:
  int window_;
  std::deque<double> values_;
};

// State (level, trend) with transition [[1,1],[0,1]], observation of the level.
class KalmanPredictor final : public Predictor {
 public:
  explicit KalmanPredictor(const PredictorOptions& o)
      : q_level_(o.q_level), q_trend_(o.q_trend), r_(o.r) {}
  void observe(double z) override {
    if (!initialised_) {
      level_ = z, trend_ = 0;
      p00_ = r_, p01_ = 0, p11_ = r_;
      initialised_ = true;
      return;
    }
    // Predict.
    const double l = level_ + trend_, t = trend_;
    const double a00 = p00_ + 2 * p01_ + p11_ + q_level_;
    const double a01 = p01_ + p11_;
    const double a11 = p11_ + q_trend_;
    // Update with the observed level.
    const double s = a00 + r_;
    const double k0 = a00 / s, k1 = a01 / s;
    const double y = z - l;
    level_ = l + k0 * y;
    trend_ = t + k1 * y;
    p00_ = (1 - k0) * a00;
    p01_ = (1 - k0) * a01;
    p11_ = a11 - k1 * a01;
  }
  std::optional<double> predict() const override {
    if (!initialised_) return std::nullopt;
    return std::max(0.0, level_ + trend_);
  }

 private:
  double q_level_, q_trend_, r_;
  bool initialised_ = false;
  double level_ = 0, trend_ = 0;
  double p00_ = 0, p01_ = 0, p11_ = 0;
};

}  // namespace

Status PredictorOptions::validate() const {
  if (window < 2) return invalid_argument("predictor window must be >= 2", "window");
  if (!(q_level >= 0) || !(q_trend >= 0) || !(r > 0) || !std::isfinite(q_level) ||
      !std::isfinite(q_trend) || !std::isfinite(r))
    return invalid_argument("kalman needs q_level >= 0, q_trend >= 0 and r > 0", "kalman");
  return Status::ok();
}

Result<PredictorKind> parse_predictor_kind(std::string_view name) {
  if (name == "constant") return PredictorKind::kConstant;
  if (name == "linear") return PredictorKind::kLinear;
  if (name == "kalman") return PredictorKind::kKalman;
  return invalid_argument(
      "unknown predictor '" + std::string(name) + "' (constant, linear, kalman)", "predictor");
}

const char* predictor_kind_name(PredictorKind kind) {
  switch (kind) {
    case PredictorKind::kConstant: return "constant";
    case PredictorKind::kLinear: return "linear";
    case PredictorKind::kKalman: return "kalman";
  }
  return "?";
}

std::unique_ptr<Predictor> make_predictor(const PredictorOptions& o) {
  switch (o.kind) {
    case PredictorKind::kConstant: return std::make_unique<ConstantPredictor>();
    case PredictorKind::kLinear: return std::make_unique<LinearPredictor>(o.window);
    case PredictorKind::kKalman: return std::make_unique<KalmanPredictor>(o);
  }
  return std::make_unique<ConstantPredictor>();
}

}  // namespace turbine::planner
