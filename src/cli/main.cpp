// The single `turbine` binary: `turbine run` serves a model in one process.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cli/bench_command.h"
#include "cli/model_source.h"
#include "cli/tokenize_command.h"
#include "common/env.h"
#include "engine/backend.h"
#include "engine/engine.h"
#include "frontend/frontend.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace turbine::cli {
namespace {

struct RunOptions {
  using Http = frontend::FrontendOptions;
  std::string model;
  std::string revision = "main";
  frontend::FrontendOptions http;
  int max_model_len = 0;
  int max_num_seqs = 16;
  int max_num_batched_tokens = 2048;
  int block_size = 16;
  int64_t kv_cache_memory = 0;  // bytes; 0: the backend's default budget
  bool enable_prefix_caching = true;
  int threads = 0;
  double shutdown_grace_s = 30.0;
};

std::atomic<int> g_signal{0};  // the only process-wide state: set by the signal handler

extern "C" void on_signal(int sig) {
  g_signal.store(sig);
}

// What clients call the model when --served-model-name is not given: the Hub repo id as typed,
// else the file's stem or the folder's name (GGUF `general.name` is often just "llama").
std::string default_served_name(const std::string& spec, const std::filesystem::path& path) {
  if (!spec.empty() && !std::filesystem::exists(spec)) return spec;
  std::filesystem::path p = path;
  if (p.filename().empty()) p = p.parent_path();
  return std::filesystem::is_directory(p) ? p.filename().string() : p.stem().string();
}

int run_server(const RunOptions& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  auto path = resolve_model(opts.model, opts.revision);
  if (!path) {
    spdlog::error("{}", path.status().message());
    return 2;
  }
  spdlog::info("loading model from {}", path->string());
  const auto t_load = std::chrono::steady_clock::now();
  auto loaded = model::load_model(*path);
  if (!loaded) {
    spdlog::error("cannot load model: {}", loaded.status().message());
    return 2;
  }
  std::shared_ptr<const model::Model> model = std::move(*loaded);
  RunOptions::Http http = opts.http;
  if (http.served_model_name.empty())
    http.served_model_name = default_served_name(opts.model, *path);
  const auto& cfg = model->config();
  spdlog::info(
      "model {}: {} layers, dim {}, {} heads ({} kv), vocab {}, context {}; loaded in {:.1f} ms",
      model->name(), cfg.n_layers, cfg.dim, cfg.n_heads, cfg.n_kv_heads, cfg.n_vocab,
      cfg.max_context,
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_load).count());

  auto tok = tokenizer::make_tokenizer(model->vocab());
  if (!tok) {
    spdlog::error("cannot build the tokenizer: {}", tok.status().message());
    return 2;
  }
  engine::CpuBackendOptions bopts;
  bopts.n_threads = opts.threads;
  bopts.max_num_seqs = opts.max_num_seqs;
  bopts.max_context = opts.max_model_len;
  bopts.block_size = opts.block_size;
  bopts.kv_cache_memory_bytes = opts.kv_cache_memory;
  auto backend = engine::make_cpu_backend(*model, bopts);
  if (!backend) {
    spdlog::error("cannot create the CPU backend: {}", backend.status().message());
    return 2;
  }
  spdlog::info("KV cache: {} blocks of {} positions, prefix caching {}", (*backend)->num_blocks(),
               (*backend)->block_size(), opts.enable_prefix_caching ? "on" : "off");
  engine::EngineOptions eopts;
  eopts.max_num_batched_tokens = opts.max_num_batched_tokens;
  eopts.max_num_seqs = opts.max_num_seqs;
  eopts.enable_prefix_caching = opts.enable_prefix_caching;
  if ((*tok)->eos_id() >= 0) eopts.eos_token_ids.push_back((*tok)->eos_id());
  if (Status st = eopts.validate(); !st.is_ok()) {
    spdlog::error("{}", st.message());
    return 2;
  }
  auto engine = std::make_unique<engine::Engine>(std::move(*backend), cfg.n_vocab, eopts);

  auto front = frontend::Frontend::create(http, model, std::move(*tok), std::move(engine));
  if (!front) {
    spdlog::error("{}", front.status().message());
    return 2;
  }
  if (Status st = (*front)->start(); !st.is_ok()) {
    spdlog::error("cannot start the HTTP server: {}", st.message());
    return 2;
  }
  const double startup_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("serving {} on http://{}:{} (ready in {:.0f} ms)", http.served_model_name, http.host,
               (*front)->port(), startup_ms);

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  while (g_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  spdlog::info("signal {} received: finishing in-flight requests (grace {:.0f} s)", g_signal.load(),
               opts.shutdown_grace_s);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C kills at once
  (*front)->shutdown(std::chrono::milliseconds(static_cast<int64_t>(opts.shutdown_grace_s * 1000)));
  spdlog::info("stopped");
  return 0;
}

}  // namespace
}  // namespace turbine::cli

int main(int argc, char** argv) {
  using turbine::cli::RunOptions;
  CLI::App app{"Turbine: an OpenAI-compatible LLM inference server"};
  app.set_version_flag("--version", std::string("turbine ") + TURBINE_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // `turbine run --log-level debug` works as well as `turbine --log-level ...`
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->envname("TURBINE_LOG_LEVEL");

  RunOptions run;
  auto* cmd = app.add_subcommand("run", "Serve a model over the OpenAI API in one process");
  cmd->add_option("--model,-m", run.model,
                  "GGUF file, Hugging Face folder, or Hub repo id (org/name); default: "
                  "$TURBINE_SHARED/models/stories260K/stories260K.gguf, else " +
                      std::string(turbine::cli::kDefaultHubModel));
  cmd->add_option("--revision", run.revision, "Hub revision (branch, tag or commit)");
  cmd->add_option("--served-model-name", run.http.served_model_name,
                  "Model name clients use (default: the model's name)");
  cmd->add_option("--host", run.http.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", run.http.port, "Port to listen on (0: any free port)")
      ->capture_default_str();
  std::string api_key;
  cmd->add_option("--api-key", api_key, "Require `Authorization: Bearer KEY` on /v1/*")
      ->envname("TURBINE_API_KEY");
  cmd->add_option("--max-model-len", run.max_model_len, "Context length (default: the model's)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-num-seqs", run.max_num_seqs, "Sequences decoded together")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-num-batched-tokens", run.max_num_batched_tokens,
                  "Tokens per forward step (chunked prefill budget)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--block-size", run.block_size, "Token positions per KV cache block")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--kv-cache-memory", run.kv_cache_memory,
                  "KV cache bytes (0: max-num-seqs full contexts, at most 2 GiB)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", run.enable_prefix_caching,
                "Reuse the KV of identical prompt prefixes (default: on)");
  cmd->add_option("--threads", run.threads, "CPU backend threads (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--http-threads", run.http.http_threads, "HTTP event-loop threads")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--shutdown-grace", run.shutdown_grace_s,
                  "Seconds to let in-flight requests finish on SIGINT/SIGTERM")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();

  turbine::cli::add_bench_command(app);
  turbine::cli::add_tokenize_command(app);

  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));
  if (!api_key.empty()) run.http.api_key = api_key;
  if (cmd->parsed()) return turbine::cli::run_server(run);
  return 0;
}
