// Process signals for the long-running subcommands (`run`, `frontend`, `worker`).
#pragma once

#include <functional>

namespace turbine::cli {

// Installs SIGINT/SIGTERM handlers and blocks until one arrives; returns the signal number.
// Afterwards SIGINT is back to its default, so a second Ctrl-C kills at once. With `on_hangup`,
// SIGHUP is caught too and on_hangup runs on this (the calling) thread for each one, within
// 50 ms (the handler only sets a flag); without it SIGHUP keeps its default action.
int wait_for_shutdown_signal(const std::function<void()>& on_hangup = {});

}  // namespace turbine::cli
