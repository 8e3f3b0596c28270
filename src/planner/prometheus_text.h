// A strict parser of the Prometheus text exposition format (version 0.0.4), for reading the
// frontend's and the workers' /metrics. Strict means: a line that is not a comment, a blank line
// or a well-formed sample is an error naming the line; so are a TYPE given twice or after the
// metric's samples, an unknown type, a series given twice, and a histogram bucket without `le`.
// What we cannot use we do not guess at: the planner holds its fleet when a scrape fails.
//
// Pure; a MetricSet is immutable after parse and may be read from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace turbine::planner {

using Labels = std::vector<std::pair<std::string, std::string>>;  // sorted by name

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
  std::optional<int64_t> timestamp_ms;
};

class MetricSet {
 public:
  // InvalidArgument "line N: ..." for anything malformed.
  static Result<MetricSet> parse(std::string_view text);

  const std::vector<Sample>& samples() const { return samples_; }
  // The declared TYPE of a metric family (counter, gauge, histogram, summary, untyped).
  std::optional<std::string> type(std::string_view family) const;
  // Sum over the series of `name` whose labels include every pair of `match`; nullopt when
  // no series matches.
  std::optional<double> sum(std::string_view name, const Labels& match = {}) const;
  // The distinct values of `label` among the series of `name`.
  std::vector<std::string> label_values(std::string_view name, std::string_view label) const;
  // Histogram `family` (the `_bucket` series; `le` ascending, summed over series matching
  // `match`): the cumulative counts by upper bound. Empty when absent.
  std::vector<std::pair<double, double>> buckets(std::string_view family,
                                                 const Labels& match = {}) const;

 private:
  std::vector<Sample> samples_;
  std::vector<std::pair<std::string, std::string>> types_;
};

}  // namespace turbine::planner
