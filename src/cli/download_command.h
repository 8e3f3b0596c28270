// `turbine download`: prefetch a Hugging Face Hub model (init containers, air-gapped preparation).
#pragma once

#include <CLI/CLI.hpp>

namespace turbine::cli {

// Registers the `download` subcommand; its callback downloads and exits the process with 0, or
// 1 when the download failed (the message says why: offline, token, not found, ...).
void add_download_command(CLI::App& app);

}  // namespace turbine::cli
