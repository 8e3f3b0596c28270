#include "cli/signals.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

namespace turbine::cli {
namespace {

// The only process-wide state: set by the signal handlers.
std::atomic<int> g_signal{0};
std::atomic<bool> g_hangup{false};
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free);

extern "C" void on_signal(int sig) {
  g_signal.store(sig);
}

extern "C" void on_sighup(int) {
  g_hangup.store(true);
}

}  // namespace

int wait_for_shutdown_signal(const std::function<void()>& on_hangup) {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  if (on_hangup) std::signal(SIGHUP, on_sighup);
  while (g_signal.load() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (g_hangup.exchange(false) && on_hangup) on_hangup();
  }
  std::signal(SIGINT, SIG_DFL);
  return g_signal.load();
}

}  // namespace turbine::cli
