// `turbine planner`: autoscaling of a deployment's prefill and decode pools (src/planner), and
// `turbine planner profile` (cli/planner_profile.cpp). Configuration: --config FILE (JSON,
// planner/config.h) < TURBINE_PLANNER_* variables < flags; a single model can be given with
// flags alone. A configuration error refuses to start (exit 2) with the key named.
#include "cli/planner_command.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "cli/runtime_flags.h"
#include "cli/signals.h"
#include "http/server.h"
#include "planner/planner.h"

namespace turbine::cli {
namespace {

struct PlannerArgs {
  std::string config_file;
  std::string mode, connector, predictor;
  double interval_s = 0, time_scale = 0, scrape_timeout_s = 0;
  bool dry_run = false, check_config = false;
  std::string frontend_metrics, status_host, decision_log, log_dir;
  int status_port = -2, max_gpus_total = -1, scale_down_window = -1;
  std::string model, profile;
  double ttft_ms = 0, itl_ms = 0, ready_timeout_s = 0;
  int max_gpus = -1, gpus_per_worker = -1;
  int min_decode = -1, max_decode = -1, initial_decode = -1;
  int min_prefill = -1, max_prefill = -1, initial_prefill = -1;
  std::string decode_command, prefill_command, decode_deployment, prefill_deployment;
  std::string k8s_api_server, k8s_token_file, k8s_ca_file, k8s_namespace;
  RuntimeFlags runtime;
  CLI::App* cmd = nullptr;
};

// "a b 'c d'" -> {a, b, c d}: whitespace-separated, single or double quotes group.
std::vector<std::string> split_command(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (char c : s) {
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else {
        cur += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(std::move(cur)), cur.clear(), in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) out.push_back(std::move(cur));
  return out;
}

bool given(const PlannerArgs& a, const char* flag) {
  return a.cmd->get_option(flag)->count() > 0;
}

Result<planner::PlannerConfig> build_config(const PlannerArgs& a) {
  planner::PlannerConfig c;
  if (!a.config_file.empty()) {
    TURBINE_ASSIGN_OR_RETURN(c, planner::load_config_file(a.config_file));
  }
  if (!a.mode.empty())
    c.mode = a.mode == "sla" ? planner::PlannerMode::kSla : planner::PlannerMode::kLoad;
  if (!a.connector.empty()) {
    c.connector = a.connector == "kubernetes" ? planner::ConnectorKind::kKubernetes
                  : a.connector == "virtual"  ? planner::ConnectorKind::kVirtual
                                              : planner::ConnectorKind::kLocal;
  }
  if (!a.predictor.empty()) {
    TURBINE_ASSIGN_OR_RETURN(c.sla.predictor.kind, planner::parse_predictor_kind(a.predictor));
  }
  if (a.interval_s > 0) c.interval_s = a.interval_s;
  if (a.time_scale > 0) c.time_scale = a.time_scale;
  if (a.scrape_timeout_s > 0) c.scrape_timeout_s = a.scrape_timeout_s;
  if (a.dry_run) c.dry_run = true;
  if (!a.frontend_metrics.empty()) c.frontend_metrics_url = a.frontend_metrics;
  if (!a.status_host.empty()) c.status_host = a.status_host;
  if (a.status_port != -2) c.status_port = a.status_port;
  if (!a.decision_log.empty()) c.decision_log = a.decision_log;
  if (!a.log_dir.empty()) c.local.log_dir = a.log_dir;
  if (a.ready_timeout_s > 0) c.local.ready_timeout_s = a.ready_timeout_s;
  if (a.max_gpus_total >= 0) c.max_gpus_total = a.max_gpus_total;
  if (a.scale_down_window >= 0) c.sla.scale_down_window = a.scale_down_window;
  if (given(a, "--namespace")) c.ns = a.runtime.ns;
  if (!a.k8s_api_server.empty()) c.kubernetes.api_server = a.k8s_api_server;
  if (!a.k8s_token_file.empty()) c.kubernetes.token_file = a.k8s_token_file;
  if (!a.k8s_ca_file.empty()) c.kubernetes.ca_file = a.k8s_ca_file;
  if (!a.k8s_namespace.empty()) c.kubernetes.namespace_name = a.k8s_namespace;

  // Flags for one model: they name it, or apply to the configuration's only model.
  const bool model_flags = !a.model.empty() || !a.profile.empty() || a.ttft_ms > 0 ||
                           a.itl_ms > 0 || a.max_gpus >= 0 || a.gpus_per_worker >= 0 ||
                           a.min_decode >= 0 || a.max_decode >= 0 || a.initial_decode >= 0 ||
                           a.min_prefill >= 0 || a.max_prefill >= 0 || a.initial_prefill >= 0 ||
                           !a.decode_command.empty() || !a.prefill_command.empty() ||
                           !a.decode_deployment.empty() || !a.prefill_deployment.empty();
  if (model_flags) {
    if (c.models.size() > 1)
      return invalid_argument(
          "planner config: models: per-model flags need a configuration with one model", "models");
    if (c.models.empty()) {
      c.models.emplace_back();
      c.models[0].pools.push_back({});
    }
    planner::ModelConfig& m = c.models[0];
    if (!a.model.empty()) m.name = a.model;
    if (!a.profile.empty()) m.profile_path = a.profile;
    if (a.ttft_ms > 0) m.ttft_ms = a.ttft_ms;
    if (a.itl_ms > 0) m.itl_ms = a.itl_ms;
    if (a.max_gpus >= 0) m.max_gpus = a.max_gpus;
    const bool want_prefill = a.min_prefill >= 0 || a.max_prefill >= 0 || a.initial_prefill >= 0 ||
                              !a.prefill_command.empty() || !a.prefill_deployment.empty();
    if (want_prefill && !m.pool(planner::PoolRole::kPrefill)) {
      planner::PoolConfig p;
      p.role = planner::PoolRole::kPrefill;
      p.min_replicas = 0;
      m.pools.push_back(p);
    }
    for (planner::PoolConfig& p : m.pools) {
      const bool prefill = p.role == planner::PoolRole::kPrefill;
      const int mn = prefill ? a.min_prefill : a.min_decode;
      const int mx = prefill ? a.max_prefill : a.max_decode;
      const int init = prefill ? a.initial_prefill : a.initial_decode;
      const std::string& cmd = prefill ? a.prefill_command : a.decode_command;
      const std::string& dep = prefill ? a.prefill_deployment : a.decode_deployment;
      if (mn >= 0) p.min_replicas = mn;
      if (mx >= 0) p.max_replicas = mx;
      if (init >= 0) p.initial_replicas = init;
      if (a.gpus_per_worker >= 0) p.gpus_per_worker = a.gpus_per_worker;
      if (!cmd.empty()) p.command = split_command(cmd);
      if (!dep.empty()) p.deployment = dep;
    }
  }
  TURBINE_RETURN_IF_ERROR(c.validate());
  TURBINE_RETURN_IF_ERROR(c.load_profiles());
  return c;
}

std::atomic<bool> g_stop{false};

int run_planner(const PlannerArgs& a) {
  auto config = build_config(a);
  if (!config) {
    spdlog::error("{}", config.status().message());
    std::fprintf(stderr, "turbine planner: refusing to start: %s\n",
                 config.status().message().c_str());
    return 2;
  }
  planner::PlannerConfig c = std::move(*config);
  if (a.check_config) {
    std::printf("planner config ok: mode %s, connector %s, %zu model(s)\n",
                planner::planner_mode_name(c.mode), planner::connector_kind_name(c.connector),
                c.models.size());
    return 0;
  }
  std::FILE* log = nullptr;
  if (!c.decision_log.empty()) {
    log = std::fopen(c.decision_log.c_str(), "a");
    if (!log) {
      std::fprintf(stderr, "turbine planner: refusing to start: decision_log: cannot open %s\n",
                   c.decision_log.c_str());
      return 2;
    }
  }
  std::shared_ptr<runtime::Discovery> discovery;
  if (c.connector == planner::ConnectorKind::kVirtual ||
      (c.connector == planner::ConnectorKind::kKubernetes &&
       (given(a, "--etcd-endpoints") || given(a, "--discovery")))) {
    auto d = a.runtime.make_discovery();
    if (!d) {
      std::fprintf(stderr, "turbine planner: refusing to start: discovery: %s\n",
                   d.status().message().c_str());
      return 2;
    }
    discovery = std::move(*d);
  }
  auto metrics = std::make_shared<planner::PlannerMetrics>();
  std::unique_ptr<planner::Connector> connector;
  // The planner's event log sink is bound after it exists; the connector holds a forwarder.
  std::shared_ptr<planner::EventLog> sink = std::make_shared<planner::EventLog>();
  planner::EventLog forward = [sink](boost::json::object e) {
    if (*sink) (*sink)(std::move(e));
  };
  switch (c.connector) {
    case planner::ConnectorKind::kLocal:
      connector = planner::make_local_connector(c.local, forward);
      break;
    case planner::ConnectorKind::kKubernetes: {
      auto k = planner::make_kubernetes_connector(c.kubernetes);
      if (!k) {
        std::fprintf(stderr, "turbine planner: refusing to start: %s\n",
                     k.status().message().c_str());
        return 2;
      }
      connector = std::move(*k);
      break;
    }
    case planner::ConnectorKind::kVirtual:
      connector = planner::make_virtual_connector(discovery, c.ns);
      break;
  }
  std::unique_ptr<http::Server> status;
  if (c.status_port >= 0) {
    http::Router router;
    router.add(
        "GET", "/metrics",
        [metrics](const http::Request&, http::ResponseWriter& w) -> boost::asio::awaitable<void> {
          co_await w.send(200, "text/plain; version=0.0.4; charset=utf-8", metrics->serialize());
        });
    router.add("GET", "/live",
               [](const http::Request&, http::ResponseWriter& w) -> boost::asio::awaitable<void> {
                 co_await w.send(200, "application/json", R"({"status":"live"})");
               });
    http::ServerOptions so;
    so.host = c.status_host;
    so.port = static_cast<uint16_t>(c.status_port);
    status = std::make_unique<http::Server>(so, std::move(router));
    if (Status st = status->start(); !st.is_ok()) {
      std::fprintf(stderr, "turbine planner: refusing to start: status_port: %s\n",
                   st.message().c_str());
      return 2;
    }
    spdlog::info("planner status (/metrics, /live) on {}:{}", c.status_host, status->port());
  }
  const planner::PlannerConfig summary = c;
  auto source = planner::make_http_metrics_source(c.frontend_metrics_url, c.scrape_timeout_s);
  planner::Planner p(std::move(c), std::move(source), std::move(connector), metrics, discovery);
  p.set_log(log);
  *sink = p.event_log();
  spdlog::info(
      "planner: mode {}, connector {}{}, every {:.0f} s (time scale {}), {} model(s), "
      "metrics from {}",
      planner::planner_mode_name(summary.mode), planner::connector_kind_name(summary.connector),
      summary.dry_run ? " (dry run)" : "", summary.interval_s, summary.time_scale,
      summary.models.size(), summary.frontend_metrics_url);
  std::thread waiter([] {
    const int sig = wait_for_shutdown_signal();
    spdlog::info("planner: signal {}: stopping", sig);
    g_stop = true;
  });
  p.run(g_stop);
  waiter.join();
  if (status) status->stop();
  if (log) std::fclose(log);
  spdlog::info("planner: stopped");
  return 0;
}

}  // namespace

void add_planner_command(CLI::App& app) {
  auto args = std::make_shared<PlannerArgs>();
  PlannerArgs& a = *args;
  auto* cmd = app.add_subcommand(
      "planner", "Autoscale prefill and decode workers to load or to TTFT/ITL targets");
  a.cmd = cmd;
  cmd->add_option("--config", a.config_file,
                  "JSON configuration (docs/PLANNER.md); flags override it")
      ->envname("TURBINE_PLANNER_CONFIG");
  cmd->add_option("--mode", a.mode,
                  "load (KV usage and queue thresholds) or sla (TTFT/ITL targets)")
      ->check(CLI::IsMember({"load", "sla"}))
      ->envname("TURBINE_PLANNER_MODE");
  cmd->add_option("--connector", a.connector,
                  "local (worker processes here), kubernetes (Deployment scale), virtual "
                  "(decisions written to discovery)")
      ->check(CLI::IsMember({"local", "kubernetes", "virtual"}))
      ->envname("TURBINE_PLANNER_CONNECTOR");
  cmd->add_option("--interval", a.interval_s,
                  "Seconds between decisions (planner time; default 30)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--time-scale", a.time_scale,
                  "Simulated seconds per wall second (a mock fleet's --speedup; default 1)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--scrape-timeout", a.scrape_timeout_s, "Seconds to wait for /metrics")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--dry-run", a.dry_run, "Log decisions, change nothing");
  cmd->add_flag("--check-config", a.check_config,
                "Validate the configuration (and load the profiles), then exit");
  cmd->add_option("--frontend-metrics", a.frontend_metrics,
                  "The frontend's /metrics URL (default http://127.0.0.1:8000/metrics)")
      ->envname("TURBINE_PLANNER_FRONTEND_METRICS");
  cmd->add_option("--status-host", a.status_host, "Address of the status port");
  cmd->add_option("--status-port", a.status_port,
                  "Port of /metrics (turbine_planner_*) and /live (-1: none, 0: any)")
      ->check(CLI::Range(-1, 65535))
      ->envname("TURBINE_PLANNER_STATUS_PORT");
  cmd->add_option("--decision-log", a.decision_log,
                  "Append every interval's inputs, decisions and worker events as JSON lines");
  cmd->add_option("--max-gpus-total", a.max_gpus_total, "GPU budget over all models (0: none)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--model", a.model, "Served model name (one model from flags)");
  cmd->add_option("--profile", a.profile, "The model's profile (turbine planner profile)");
  cmd->add_option("--ttft", a.ttft_ms, "TTFT target, ms (sla mode; default 2000)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--itl", a.itl_ms, "ITL target, ms (sla mode; default 50)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--predictor", a.predictor, "Load predictor: constant, linear, kalman")
      ->check(CLI::IsMember({"constant", "linear", "kalman"}));
  cmd->add_option("--scale-down-window", a.scale_down_window,
                  "sla: scale down to the largest size of the last N intervals (default 3)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-gpus", a.max_gpus, "The model's GPU budget (0: none)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--gpus-per-worker", a.gpus_per_worker, "GPUs of one worker (default 1)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--min-decode", a.min_decode, "Fewest decode workers (default 1)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-decode", a.max_decode, "Most decode workers (default 8)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--initial-decode", a.initial_decode, "Decode workers at start (default min)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--min-prefill", a.min_prefill, "Fewest prefill workers (a prefill pool)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-prefill", a.max_prefill, "Most prefill workers")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--initial-prefill", a.initial_prefill, "Prefill workers at start")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--decode-command", a.decode_command,
                  "local: the decode worker's command line (`turbine worker ...`; the planner "
                  "adds --status-port)");
  cmd->add_option("--prefill-command", a.prefill_command,
                  "local: the prefill worker's command line (--worker-type prefill)");
  cmd->add_option("--log-dir", a.log_dir, "local: folder for the workers' logs");
  cmd->add_option("--ready-timeout", a.ready_timeout_s,
                  "local: wall seconds a new worker has to become healthy (default 120)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--decode-deployment", a.decode_deployment, "kubernetes: the decode Deployment");
  cmd->add_option("--prefill-deployment", a.prefill_deployment,
                  "kubernetes: the prefill Deployment");
  cmd->add_option("--k8s-api-server", a.k8s_api_server,
                  "kubernetes: API server URL (default: in-cluster)");
  cmd->add_option("--k8s-token-file", a.k8s_token_file, "kubernetes: bearer token file");
  cmd->add_option("--k8s-ca-file", a.k8s_ca_file, "kubernetes: CA bundle of the API server");
  cmd->add_option("--k8s-namespace", a.k8s_namespace,
                  "kubernetes: namespace of the Deployments (default: the pod's)");
  a.runtime.add_to(*cmd);
  add_planner_profile_command(*cmd);
  add_planner_size_command(*cmd);
  cmd->callback([args, cmd] {
    for (CLI::App* sub : cmd->get_subcommands()) {
      if (sub->parsed()) return;  // `turbine planner profile|size` ran instead
    }
    std::exit(run_planner(*args));
  });
}

}  // namespace turbine::cli
