// Load predictors: given one observation per planner interval (request rate, mean input length,
// mean output length), the value expected for the next interval.
//   constant  the last observation;
//   linear    a least-squares line through the last `window` observations, one step ahead;
//   kalman    a local-linear-trend Kalman filter (state: level and trend; process noise
//             q_level / q_trend, measurement noise r), one step ahead.
// Predictions are never negative. Not thread-safe: one planner thread owns its predictors.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"

namespace turbine::planner {

enum class PredictorKind { kConstant, kLinear, kKalman };

struct PredictorOptions {
  PredictorKind kind = PredictorKind::kKalman;
  int window = 6;                                // linear
  double q_level = 1.0, q_trend = 0.1, r = 1.0;  // kalman
  Status validate() const;
};

Result<PredictorKind> parse_predictor_kind(std::string_view name);
const char* predictor_kind_name(PredictorKind kind);

class Predictor {
 public:
  virtual ~Predictor() = default;
  virtual void observe(double value) = 0;
  // nullopt before the first observation.
  virtual std::optional<double> predict() const = 0;
};

std::unique_ptr<Predictor> make_predictor(const PredictorOptions& options);

}  // namespace turbine::planner
