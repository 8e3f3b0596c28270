// Process signals for the long-running subcommands (`run`, and later `frontend` and `worker`).
#pragma once

namespace turbine::cli {

// Installs SIGINT/SIGTERM handlers and blocks until one arrives; returns the signal number.
// Afterwards SIGINT is back to its default, so a second Ctrl-C kills at once.
int wait_for_shutdown_signal();

}  // namespace turbine::cli
