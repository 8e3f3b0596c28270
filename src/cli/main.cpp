// The single `turbine` binary; each subcommand lives in its own file under src/cli/.
#include <cstdlib>
#include <string>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cli/bench_command.h"
#include "cli/doctor_command.h"
#include "cli/download_command.h"
#include "cli/frontend_command.h"
#include "cli/gen_model_command.h"
#include "cli/planner_command.h"
#include "cli/run_command.h"
#include "cli/tokenize_command.h"
#include "cli/worker_command.h"

int main(int argc, char** argv) {
  CLI::App app{"Turbine: an OpenAI-compatible LLM inference server"};
  app.set_version_flag("--version", std::string("turbine ") + TURBINE_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // `turbine run --log-level debug` works as well as `turbine --log-level ...`
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->envname("TURBINE_LOG_LEVEL");
  // Subcommand callbacks run after parsing; set the log level first.
  app.parse_complete_callback(
      [&log_level] { spdlog::set_level(spdlog::level::from_str(log_level)); });

  turbine::cli::add_run_command(app);
  turbine::cli::add_bench_command(app);
  turbine::cli::add_tokenize_command(app);
  turbine::cli::add_frontend_command(app);
  turbine::cli::add_worker_command(app);
  turbine::cli::add_gen_model_command(app);
  turbine::cli::add_doctor_command(app);
  turbine::cli::add_download_command(app);
  turbine::cli::add_planner_command(app);

  // TURBINE_CHECK_ARGS=1: parse the command line with every subcommand's real flags and exit (0,
  // or the parser's error) without running it; `turbine doctor --helm-values` and tests/deploy
  // check the commands of the chart and the recipes this way. The top-level parse-complete
  // callback runs after every flag, value and requirement was checked and before any subcommand.
  if (std::getenv("TURBINE_CHECK_ARGS") != nullptr)
    app.parse_complete_callback([] { std::exit(0); });

  CLI11_PARSE(app, argc, argv);
  return 0;
}
