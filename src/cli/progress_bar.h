// Download progress on stderr for the Hub client (`turbine run --model org/name`, `turbine
// download`): a one-line bar redrawn at most every 100 ms on a terminal; elsewhere (container
// logs) one line per finished file and one every 10 s.
#pragma once

#include <chrono>

#include "hub/hub.h"

namespace turbine::cli {

class ProgressBar {
 public:
  explicit ProgressBar(bool terminal) : terminal_(terminal) {}
  // Called on the downloading thread.
  void update(const hub::Progress& p);

 private:
  bool terminal_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace turbine::cli
