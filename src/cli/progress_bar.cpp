#include "cli/progress_bar.h"

#include <cstdio>
#include <string>

namespace turbine::cli {

void ProgressBar::update(const hub::Progress& p) {
  const auto now = std::chrono::steady_clock::now();
  const bool done = p.bytes_total > 0 && p.bytes_done >= p.bytes_total;
  const auto every = terminal_ ? std::chrono::milliseconds(100) : std::chrono::seconds(10);
  if (!done && now - last_ < every) return;
  last_ = now;
  const double mib = static_cast<double>(p.bytes_done) / (1 << 20);
  const char* start = terminal_ ? "\r" : "";
  if (p.bytes_total > 0) {
    const double frac = static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total);
    const int filled = static_cast<int>(frac * 30);
    std::fprintf(stderr, "%s[%zu/%zu] %-32.32s [%-30s] %5.1f%% %8.1f MiB", start, p.file_index + 1,
                 p.file_count, p.filename.c_str(), std::string(filled, '#').c_str(), frac * 100.0,
                 mib);
  } else {
    std::fprintf(stderr, "%s[%zu/%zu] %-32.32s %8.1f MiB", start, p.file_index + 1, p.file_count,
                 p.filename.c_str(), mib);
  }
  if (done || !terminal_) std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace turbine::cli
