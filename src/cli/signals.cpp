#include "cli/signals.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

namespace turbine::cli {
namespace {

std::atomic<int> g_signal{0};  // the only process-wide state: set by the signal handler

extern "C" void on_signal(int sig) {
  g_signal.store(sig);
}

}  // namespace

int wait_for_shutdown_signal() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  while (g_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::signal(SIGINT, SIG_DFL);
  return g_signal.load();
}

}  // namespace turbine::cli
