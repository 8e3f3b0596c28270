// `turbine frontend`: serves the OpenAI API for every model whose workers it discovers.
//
// Discovery drives everything, through serving::DiscoveredModels and its ModelWatcher (the path
// `turbine run` takes too, with memory discovery): a model card (v1/mdc/{ns}/...) that appears adds
// its worker, reached over the request plane, to the RoutedEngine of its model (created, with the
// tokenizer loaded from the card's location, when the model's first worker appears); a card that
// disappears drains the worker (in-flight requests finish there unless its connection breaks, then
// they migrate) and, with the last one, removes the model (404 from then on). /health lists the
// instances under v1/instances/{ns}/. KV events from the event plane go to the RoutedEngine
// that holds the publishing worker.
#include "cli/frontend_command.h"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "cli/encoder_serving.h"
#include "cli/http_flags.h"
#include "cli/parser_flags.h"
#include "cli/runtime_flags.h"
#include "cli/semantic_flags.h"
#include "cli/signals.h"
#include "cli/tracing_flags.h"
#include "frontend/frontend.h"
#include "metrics/router_metrics.h"
#include "router/routed_engine.h"
#include "serving/discovered_models.h"

namespace turbine::cli {
namespace {

struct FrontendCmdOptions {
  frontend::FrontendOptions http;
  HttpFlags http_flags;  // --api-key, CORS, --max-connections
  std::string router_mode = "kv";
  int migration_limit = 3;
  double overlap_weight = 1.0;
  double host_tier_weight = 0.75;  // KV tiers (issue 24)
  double disk_tier_weight = 0.25;
  double router_temperature = 0.0;
  int pool_size = 2;
  int request_plane_threads = 1;
  double shutdown_grace_s = 30.0;
  RuntimeFlags runtime;
  TracingFlags tracing;
  ParserFlags parsers;
  SemanticFlags semantic;
  int max_local_prefill_length = 1000;
};

int run_frontend(const FrontendCmdOptions& opts) {
  auto mode = router::parse_router_mode(opts.router_mode);
  if (!mode) {
    spdlog::error("{}", mode.status().message());
    return 2;
  }
  frontend::FrontendOptions http = opts.http;
  if (Status st = opts.http_flags.apply(http); !st.is_ok()) {
    spdlog::error("{}", st.message());
    return 2;
  }
  auto parser_choice = opts.parsers.choice();
  if (!parser_choice) {
    spdlog::error("{}", parser_choice.status().message());
    return 2;
  }
  auto router_metrics = std::make_shared<metrics::RouterMetrics>();
  http.extra_metrics = [router_metrics] { return router_metrics->serialize(); };
  const std::shared_ptr<trace::Tracer> tracer = opts.tracing.make_tracer("turbine-frontend");
  http.tracer = tracer;
  // The served models come from discovery: the config's model names are not checked at start.
  // Its `source: remote` encoder models are the encoder workers' (bound below, once watched).
  auto remote_encoders = std::make_shared<semantic_hook::RemoteEncoders>();
  auto semantic = opts.semantic.attach(http, {}, remote_encoders);
  if (!semantic) {
    spdlog::error("{}", semantic.status().message());
    return 2;
  }
  auto front = frontend::Frontend::create(http);
  if (!front) {
    spdlog::error("{}", front.status().message());
    return 2;
  }
  auto discovery = opts.runtime.make_discovery();
  if (!discovery) {
    spdlog::error("discovery: {}", discovery.status().message());
    return 2;
  }
  auto plane = opts.runtime.make_event_plane();
  if (!plane) {
    spdlog::error("event plane: {}", plane.status().message());
    return 2;
  }
  router::RouterOptions ropts;
  ropts.mode = *mode;
  ropts.migration_limit = opts.migration_limit;
  ropts.overlap_weight = opts.overlap_weight;
  ropts.host_tier_weight = opts.host_tier_weight;
  ropts.disk_tier_weight = opts.disk_tier_weight;
  ropts.temperature = opts.router_temperature;
  ropts.use_kv_events = *plane != nullptr;
  ropts.tracer = tracer;
  if (Status st = ropts.validate(); !st.is_ok()) {
    spdlog::error("{}", st.message());
    return 2;
  }

  const std::string& ns = opts.runtime.ns;
  auto connector = opts.runtime.make_connector(opts.pool_size, opts.request_plane_threads, *plane);
  if (!connector) {
    spdlog::error("request plane: {}", connector.status().message());
    return 2;
  }
  serving::DiscoveredModelsOptions sopts;
  sopts.ns = ns;
  sopts.router = ropts;
  sopts.per_model = [router_metrics](const std::string& name, router::RouterOptions& ro) {
    ro.observer = router_metrics->observer(name);
  };
  sopts.disagg.max_local_prefill_length = opts.max_local_prefill_length;
  auto token = opts.runtime.request_plane_token();
  if (!token) {
    spdlog::error("{}", token.status().message());
    return 2;
  }
  sopts.kv_token = *token;
  sopts.parsers = *parser_choice;
  auto models = serving::DiscoveredModels::start(sopts, **discovery, **connector, *plane, **front);
  if (!models) {
    spdlog::error("{}", models.status().message());
    return 2;
  }
  // Encoder models (embeddings, classification, rerank) their workers announce (issue 27).
  auto encoders = EncoderModels::start(**front, **discovery, opts.runtime, opts.pool_size,
                                       opts.request_plane_threads, opts.migration_limit);
  if (!encoders) {
    spdlog::error("discovery watch: {}", encoders.status().message());
    return 2;
  }
  remote_encoders->bind([w = &(*encoders)->watcher()](const std::string& name) {
    return std::shared_ptr<encoder::AsyncEncoder>(w->router_of(name));
  });
  if (Status st = (*front)->start(); !st.is_ok()) {
    spdlog::error("cannot start the HTTP server: {}", st.message());
    return 2;
  }
  spdlog::info("frontend for namespace {} serving on http://{}:{} (router {})", ns, http.host,
               (*front)->port(), opts.router_mode);

  std::function<void()> on_hangup;
  if (*semantic) {
    (*semantic)->start();
    on_hangup = [layer = semantic->get()] { (void)layer->reloader().reload_now(); };
  }
  const int sig = wait_for_shutdown_signal(on_hangup);
  spdlog::info("signal {} received: finishing in-flight requests (grace {:.0f} s)", sig,
               opts.shutdown_grace_s);
  (*front)->shutdown(std::chrono::milliseconds(static_cast<int64_t>(opts.shutdown_grace_s * 1000)));
  remote_encoders->bind({});  // before the watcher goes
  encoders->reset();
  (*models)->stop();
  (*discovery)->shutdown();
  models->reset();
  connector->reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

void add_frontend_command(CLI::App& app) {
  auto opts = std::make_shared<FrontendCmdOptions>();
  FrontendCmdOptions& f = *opts;
  auto* cmd = app.add_subcommand("frontend", "OpenAI API for the workers found in discovery");
  cmd->add_option("--host", f.http.host, "Address to listen on")
      ->envname("TURBINE_HOST")
      ->capture_default_str();
  cmd->add_option("--port", f.http.port, "Port to listen on (0: any free port)")
      ->envname("TURBINE_PORT")
      ->capture_default_str();
  f.http_flags.add_to(*cmd);
  cmd->add_option("--http-threads", f.http.http_threads, "HTTP event-loop threads")
      ->check(CLI::PositiveNumber)
      ->envname("TURBINE_HTTP_THREADS")
      ->capture_default_str();
  cmd->add_option("--router-mode", f.router_mode, "kv, round-robin, random or least-loaded")
      ->envname("TURBINE_ROUTER_MODE")
      ->capture_default_str();
  cmd->add_option("--migration-limit", f.migration_limit,
                  "Times a request may move to another worker when its worker is lost")
      ->check(CLI::NonNegativeNumber)
      ->envname("TURBINE_MIGRATION_LIMIT")
      ->capture_default_str();
  cmd->add_option("--kv-overlap-weight", f.overlap_weight, "Router: weight of cached blocks")
      ->envname("TURBINE_KV_OVERLAP_WEIGHT");
  cmd->add_option("--router-host-tier-weight", f.host_tier_weight,
                  "Router: a cached block held only in a worker's host KV tier counts this much")
      ->check(CLI::Range(0.0, 1.0))
      ->envname("TURBINE_ROUTER_HOST_TIER_WEIGHT")
      ->capture_default_str();
  cmd->add_option("--router-disk-tier-weight", f.disk_tier_weight,
                  "Router: a cached block held only in a worker's disk KV tier counts this much")
      ->check(CLI::Range(0.0, 1.0))
      ->envname("TURBINE_ROUTER_DISK_TIER_WEIGHT")
      ->capture_default_str();
  cmd->add_option("--router-temperature", f.router_temperature,
                  "Router: softmax temperature over costs (0: cheapest)")
      ->envname("TURBINE_ROUTER_TEMPERATURE");
  cmd->add_option("--request-plane-pool", f.pool_size, "TCP connections per worker")
      ->check(CLI::PositiveNumber)
      ->envname("TURBINE_REQUEST_PLANE_POOL")
      ->capture_default_str();
  cmd->add_option("--request-plane-threads", f.request_plane_threads,
                  "Threads for worker connections")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--shutdown-grace", f.shutdown_grace_s,
                  "Seconds to let in-flight requests finish on SIGINT/SIGTERM")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("!--no-ui", f.http.ui, "Do not serve the chat playground on GET /");
  f.runtime.add_to(*cmd);
  f.tracing.add_to(*cmd);
  f.parsers.add_to(*cmd);
  f.semantic.add_to(*cmd);
  cmd->add_option("--max-local-prefill-length", f.max_local_prefill_length,
                  "Disaggregated serving: prompts with at most this many uncached tokens are "
                  "prefilled on their decode worker even when prefill workers exist")
      ->check(CLI::NonNegativeNumber)
      ->envname("TURBINE_MAX_LOCAL_PREFILL_LENGTH")
      ->capture_default_str();
  cmd->callback([opts] { std::exit(run_frontend(*opts)); });
}

}  // namespace turbine::cli
