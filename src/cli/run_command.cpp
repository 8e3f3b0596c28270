// `turbine run`: model, tokenizer, engine and HTTP frontend in one process.
#include "cli/run_command.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "cli/disagg_run.h"
#include "cli/encoder_serving.h"
#include "cli/http_flags.h"
#include "cli/in_process_workers.h"
#include "cli/local_engine.h"
#include "cli/model_source.h"
#include "cli/parser_flags.h"
#include "cli/semantic_flags.h"
#include "cli/signals.h"
#include "cli/tracing_flags.h"
#include "encoder/encoder_model.h"
#include "frontend/frontend.h"
#include "metrics/router_metrics.h"
#include "model/model.h"
#include "model/model_info.h"
#include "serving/disagg_composition.h"
#include "serving/frontend_models.h"
#include "serving/in_process_workers.h"
#include "tokenizer/tokenizer.h"

namespace turbine::cli {
namespace {

struct RunOptions {
  using Http = frontend::FrontendOptions;
  std::string model;
  std::string revision = "main";
  frontend::FrontendOptions http;
  LocalEngineOptions engine;
  InProcessWorkersOptions workers;
  DisaggRunOptions disagg;
  TracingFlags tracing;
  ParserFlags parsers;
  SemanticFlags semantic;
  // --served-model-name a b ...: the first is the name the workers announce, the others are
  // aliases of the same engine.
  std::vector<std::string> served_model_names;
  HttpFlags http_flags;  // --api-key, CORS, --max-connections
  double shutdown_grace_s = 30.0;
};

int run_server(const RunOptions& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  RunOptions::Http http = opts.http;
  if (Status st = opts.http_flags.apply(http); !st.is_ok()) {
    spdlog::error("{}", st.message());
    return 2;
  }
  auto parser_choice = opts.parsers.choice();
  if (!parser_choice) {
    spdlog::error("{}", parser_choice.status().message());
    return 2;
  }
  auto path = resolve_model(opts.model, opts.revision);
  if (!path) {
    spdlog::error("{}", path.status().message());
    return 2;
  }
  if (encoder::is_encoder_folder(*path)) {  // embeddings, classification, rerank (issue 27)
    if (opts.workers.workers > 1 || opts.workers.engine != "real" ||
        opts.disagg.prefill_workers > 0) {
      spdlog::error(
          "{} is an encoder model: --workers, --engine mock and --prefill-workers "
          "apply to generative models",
          path->string());
      return 2;
    }
    if (opts.served_model_names.size() > 1) {
      spdlog::error("an encoder model takes one --served-model-name");
      return 2;
    }
    http.served_model_name = opts.served_model_names.empty()
                                 ? default_served_name(opts.model, *path)
                                 : opts.served_model_names.front();
    return run_encoder_server({*path, http, opts.engine, opts.shutdown_grace_s});
  }
  spdlog::info("loading model from {}", path->string());
  const auto t_load = std::chrono::steady_clock::now();
  auto loaded = model::load_model(*path, opts.engine.load_options());
  if (!loaded) {
    spdlog::error("cannot load model: {}", loaded.status().message());
    return 2;
  }
  std::shared_ptr<const model::Model> model = std::move(*loaded);
  http.served_model_name = opts.served_model_names.empty() ? default_served_name(opts.model, *path)
                                                           : opts.served_model_names.front();
  std::vector<std::string> aliases;
  for (size_t i = 1; i < opts.served_model_names.size(); ++i) {
    const std::string& a = opts.served_model_names[i];
    if (a != http.served_model_name &&
        std::find(aliases.begin(), aliases.end(), a) == aliases.end()) {
      aliases.push_back(a);
    }
  }
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
  LocalEngineOptions eopts = opts.engine;
  eopts.eos_token_id = (*tok)->eos_id();
  InProcessWorkersOptions wopts = opts.workers;
  const std::shared_ptr<trace::Tracer> tracer = opts.tracing.make_tracer("turbine");
  http.tracer = tracer;
  wopts.tracer = tracer;
  if (wopts.workers > 1 || wopts.engine == "mock") {  // a router in the path: its metrics too
    auto router_metrics = std::make_shared<metrics::RouterMetrics>();
    wopts.router_observer = router_metrics->observer(http.served_model_name);
    http.extra_metrics = [router_metrics] { return router_metrics->serialize(); };
  }
  std::vector<std::string> served = aliases;
  served.insert(served.begin(), http.served_model_name);
  auto semantic = opts.semantic.attach(http, served);
  if (!semantic) {
    spdlog::error("{}", semantic.status().message());
    return 2;
  }
  auto front = frontend::Frontend::create(http);
  if (!front) {
    spdlog::error("{}", front.status().message());
    return 2;
  }
  // The model reaches the frontend the way a worker's does in the distributed mode: the
  // workers register in (in-memory) discovery and a ModelWatcher announces it (serving/).
  const std::string location = std::filesystem::absolute(*path).string();
  serving::FrontendModels models(**front, *parser_choice);
  models.preload(location, std::make_shared<const model::ModelInfo>(model::model_info(*model)),
                 std::shared_ptr<tokenizer::Tokenizer>(std::move(*tok)));
  models.set_aliases(http.served_model_name, aliases);
  serving::ModelEvents events = models.events();
  const serving::WorkerEngineFactory make_engine = worker_engine_factory(*model, eopts, wopts);
  auto sopts = serving_workers_options(wopts, model->name(), location, http.served_model_name);
  if (!sopts) {
    spdlog::error("cannot create the engine: {}", sopts.status().message());
    return 2;
  }
  std::unique_ptr<serving::InProcessPrefillPool> prefill;  // --prefill-workers: outlives workers
  if (opts.disagg.prefill_workers > 0) {
    serving::InProcessPrefillOptions popts;
    popts.prefill_workers = opts.disagg.prefill_workers;
    popts.disagg.max_local_prefill_length = opts.disagg.max_local_prefill_length;
    popts.disagg.max_inflight_prefills = opts.disagg.max_inflight_prefills;
    popts.description =
        wopts.engine == "mock"
            ? fmt::format("mock (simulated: {} B/token, {} Gb/s)", wopts.mock_kv_bytes_per_token,
                          wopts.mock_kv_transfer_gbps)
            : wopts.engine;
    auto made = serving::InProcessPrefillPool::start(popts, make_engine);
    if (!made) {
      spdlog::error("{}", made.status().message());
      return 2;
    }
    prefill = std::move(*made);
    events = prefill->wrap(std::move(events));
    sopts->kv_transfer = prefill->transfer();
  }
  auto workers = serving::InProcessWorkers::start(*sopts, make_engine, std::move(events));
  if (!workers) {
    spdlog::error("cannot create the engine: {}", workers.status().message());
    return 2;
  }
  if (Status st = (*front)->start(); !st.is_ok()) {
    spdlog::error("cannot start the HTTP server: {}", st.message());
    return 2;
  }
  const double startup_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::string names;
  for (const std::string& n : served) names += (names.empty() ? "" : ", ") + n;
  spdlog::info("serving {} on http://{}:{} (ready in {:.0f} ms)", names, http.host,
               (*front)->port(), startup_ms);

  std::function<void()> on_hangup;
  if (*semantic) {
    (*semantic)->start();
    on_hangup = [layer = semantic->get()] { (void)layer->reloader().reload_now(); };
  }
  const int sig = wait_for_shutdown_signal(on_hangup);
  spdlog::info("signal {} received: finishing in-flight requests (grace {:.0f} s)", sig,
               opts.shutdown_grace_s);
  (*front)->shutdown(std::chrono::milliseconds(static_cast<int64_t>(opts.shutdown_grace_s * 1000)));
  workers->reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto opts = std::make_shared<RunOptions>();
  RunOptions& run = *opts;
  auto* cmd = app.add_subcommand("run", "Serve a model over the OpenAI API in one process");
  cmd->add_option("--model,-m", run.model,
                  "GGUF file, Hugging Face folder, or Hub repo id (org/name); default: "
                  "$TURBINE_SHARED/models/stories260K/stories260K.gguf, else " +
                      std::string(kDefaultHubModel));
  cmd->add_option("--revision", run.revision, "Hub revision (branch, tag or commit)");
  cmd->add_option("--served-model-name", run.served_model_names,
                  "Model names clients use (default: the model's name); several names all serve "
                  "the same engine, the first is the primary (as vLLM's flag)");
  cmd->add_option("--host", run.http.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", run.http.port, "Port to listen on (0: any free port)")
      ->capture_default_str();
  run.http_flags.add_to(*cmd);
  cmd->add_flag("!--no-ui", run.http.ui, "Do not serve the chat playground on GET /");
  add_engine_flags(*cmd, run.engine);
  run.tracing.add_to(*cmd);
  run.parsers.add_to(*cmd);
  run.semantic.add_to(*cmd);
  add_disagg_run_flags(*cmd, run.disagg);
  cmd->add_option("--workers", run.workers.workers, "In-process workers behind the router")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--engine", run.workers.engine,
                  "Worker engine: real (the model), or mock (simulated time; --model names the "
                  "tokenizer)")
      ->check(CLI::IsMember({"real", "mock"}))
      ->capture_default_str();
  cmd->add_option("--router-mode", run.workers.router_mode, "How requests are spread over workers")
      ->check(CLI::IsMember({"kv", "round-robin", "random", "least-loaded"}))
      ->capture_default_str();
  cmd->add_option("--router-temperature", run.workers.router_temperature,
                  "kv mode: softmax temperature over normalised costs (0: the cheapest worker)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--kv-overlap-weight", run.workers.kv_overlap_weight,
                  "kv mode: cost = weight * prefill_blocks + decode_blocks")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--router-host-tier-weight", run.workers.router_host_tier_weight,
                  "kv mode: a cached block held only in a worker's host KV tier counts this much")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--router-disk-tier-weight", run.workers.router_disk_tier_weight,
                  "kv mode: a cached block held only in a worker's disk KV tier counts this much")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_flag("--router-kv-events,!--no-router-kv-events", run.workers.router_kv_events,
                "kv mode: index the workers' KV events (off: approximate, from routing decisions "
                "with a 120 s TTL)");
  cmd->add_option("--speedup", run.workers.speedup,
                  "Mock engine: simulated seconds per wall-clock second")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--mock-kv-blocks", run.workers.mock_kv_blocks,
                  "Mock engine: KV blocks per worker")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--mock-kv-bytes-per-token", run.workers.mock_kv_bytes_per_token,
                  "Mock engine, --prefill-workers: simulated KV bytes per token (default: "
                  "Llama-3-8B in BF16)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--mock-kv-transfer-gbps", run.workers.mock_kv_transfer_gbps,
                  "Mock engine, --prefill-workers: simulated KV link per decode worker, Gb/s")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--http-threads", run.http.http_threads, "HTTP event-loop threads")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--shutdown-grace", run.shutdown_grace_s,
                  "Seconds to let in-flight requests finish on SIGINT/SIGTERM")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();

  cmd->callback([opts] { std::exit(run_server(*opts)); });
}

}  // namespace turbine::cli
