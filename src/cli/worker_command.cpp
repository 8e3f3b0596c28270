// `turbine worker`: loads a model, serves its engine on the TCP request plane, registers the
// instance and its model card under this process's lease, publishes KV events and load.
#include "cli/worker_command.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/asio/ip/host_name.hpp>

#include "cli/disagg_run.h"
#include "cli/encoder_serving.h"
#include "cli/in_process_workers.h"
#include "cli/local_engine.h"
#include "cli/model_source.h"
#include "cli/runtime_flags.h"
#include "cli/signals.h"
#include "cli/tracing_flags.h"
#include "cli/worker_status.h"
#include "encoder/encoder_model.h"
#include "engine/traced_engine.h"
#include "mock/mock_engine.h"
#include "model/model.h"
#include "runtime/component.h"
#include "runtime/message_request_plane.h"
#include "runtime/model_card.h"
#include "runtime/request_plane.h"
#include "runtime/wire.h"
#include "tokenizer/tokenizer.h"

namespace turbine::cli {
namespace {

struct WorkerOptions {
  std::string model;
  std::string revision = "main";
  std::string served_model_name;
  std::string component = runtime::kWorkerComponent;
  std::string endpoint = runtime::kGenerateEndpoint;
  std::string worker_type = "both";
  std::string host = "0.0.0.0";
  uint16_t port = 0;
  std::string advertise_host;
  std::string kv_transport = "tcp";  // tcp, or ucx (RDMA where the host has it)
  uint16_t kv_transport_port = 0;    // ucx: the UCX listener's port (0: any)
  int request_plane_threads = 1;
  double load_interval_s = 1.0;
  int status_port = -1;
  double shutdown_grace_s = 30.0;
  LocalEngineOptions engine;
  std::string engine_kind = "real";  // real, or mock (simulated time)
  // mock: simulated seconds per wall-clock second, KV blocks, and for disaggregated serving the
  // simulated KV bytes per token and inbound KV link (as `turbine run`'s flags).
  InProcessWorkersOptions mock;
  RuntimeFlags runtime;
  TracingFlags tracing;
};

// The mock engine (mock/mock_engine.h) for --engine mock: the model names the tokenizer and the
// context; the engine flags that apply (block size, context, prefix caching) are honoured, and
// the disaggregation role's (instance id, KV transfer) as for the real engine.
Result<std::shared_ptr<mock::MockEngine>> make_mock_worker(const model::Model& model,
                                                           const LocalEngineOptions& e,
                                                           const WorkerOptions& o) {
  TURBINE_ASSIGN_OR_RETURN(mock::MockEngineOptions m, mock_engine_options(model, e, o.mock));
  m.kv_event_sink = e.kv_event_sink;
  m.instance_id = e.instance_id;
  m.kv_transfer = e.kv_transfer;
  if (m.kv_offload.enabled()) {
    TURBINE_ASSIGN_OR_RETURN(m.kv_tiers, mock::simulated_tiers(m));
  }
  return std::make_shared<mock::MockEngine>(m);
}

int run_worker(const WorkerOptions& opts) {
  // Prefill workers register under their own component (issue 8) unless told otherwise.
  const bool own_component =
      opts.worker_type == "prefill" && opts.component == runtime::kWorkerComponent;
  runtime::EndpointId ep{
      opts.runtime.ns, own_component ? runtime::kPrefillComponent : opts.component, opts.endpoint};
  if (Status st = ep.validate(); !st.is_ok()) {
    spdlog::error("{}", st.message());
    return 2;
  }
  auto path = resolve_model(opts.model, opts.revision);
  if (!path) {
    spdlog::error("{}", path.status().message());
    return 2;
  }
  if (encoder::is_encoder_folder(*path)) {  // embeddings, classification, rerank (issue 27)
    EncoderWorkerArgs e;
    e.path = *path;
    e.served_name = opts.served_model_name.empty() ? default_served_name(opts.model, *path)
                                                   : opts.served_model_name;
    e.endpoint = ep;
    e.runtime = opts.runtime;
    e.host = opts.host;
    e.port = opts.port;
    e.advertise_host = opts.advertise_host;
    e.request_plane_threads = opts.request_plane_threads;
    e.status_port = opts.status_port;
    e.shutdown_grace_s = opts.shutdown_grace_s;
    e.engine = opts.engine;
    return run_encoder_worker(e);
  }
  auto loaded = model::load_model(*path, opts.engine.load_options());
  if (!loaded) {
    spdlog::error("cannot load model: {}", loaded.status().message());
    return 2;
  }
  std::shared_ptr<const model::Model> model = std::move(*loaded);
  auto tok = tokenizer::make_tokenizer(model->vocab());
  if (!tok) {
    spdlog::error("cannot build the tokenizer: {}", tok.status().message());
    return 2;
  }

  auto discovery = opts.runtime.make_discovery();
  if (!discovery) {
    spdlog::error("discovery: {}", discovery.status().message());
    return 2;
  }
  const uint64_t instance_id = (*discovery)->instance_id();
  auto plane = opts.runtime.make_event_plane();
  if (!plane) {
    spdlog::error("event plane: {}", plane.status().message());
    return 2;
  }

  auto token = opts.runtime.request_plane_token();
  if (!token) {
    spdlog::error("{}", token.status().message());
    return 2;
  }
  LocalEngineOptions eopts = opts.engine;
  eopts.eos_token_id = (*tok)->eos_id();
  if (Status st = configure_disagg_worker(opts.worker_type, instance_id, eopts, *token);
      !st.is_ok()) {
    spdlog::error("{}", st.message());
    return 2;
  }
  if (*plane) {
    eopts.kv_event_sink = std::make_shared<runtime::EventPlaneKvSink>(
        *plane, runtime::kv_events_subject(ep.ns, ep.component), instance_id);
  }
  std::shared_ptr<engine::AsyncEngine> engine;
  std::shared_ptr<engine::KvTransferSource> kv_source;  // the same engine: its pinned KV transfers
  if (opts.engine_kind == "mock") {
    auto made = make_mock_worker(*model, eopts, opts);
    if (!made) {
      spdlog::error("cannot create the mock engine: {}", made.status().message());
      return 2;
    }
    engine = *made;
    kv_source = *made;
  } else {
    auto made = make_local_engine(*model, eopts);
    if (!made) {
      spdlog::error("cannot create the engine: {}", made.status().message());
      return 2;
    }
    std::shared_ptr<engine::Engine> local = std::move(*made);
    engine = local;
    kv_source = local;
  }

  runtime::WorkerServerOptions sopts;
  sopts.host = opts.host;
  sopts.port = opts.port;
  sopts.n_threads = opts.request_plane_threads;
  sopts.token = *token;
  // What the request planes serve: the engine, with a "generate" span per request when tracing
  // is on (the KV transfer source and the status port keep the engine itself).
  std::shared_ptr<engine::AsyncEngine> served = engine;
  const std::shared_ptr<trace::Tracer> tracer = opts.tracing.make_tracer("turbine-worker");
  if (tracer->enabled()) {
    served = std::make_shared<engine::TracedEngine>(
        engine, tracer, "generate",
        std::vector<trace::Attribute>{
            {"turbine.worker.instance_id", runtime::hex_id(instance_id)}});
  }
  runtime::WorkerServer server(sopts, served);
  std::string advertise = opts.advertise_host;
  if (advertise.empty())
    advertise = opts.host != "0.0.0.0" ? opts.host : boost::asio::ip::host_name();
  serve_kv_transfers(opts.worker_type, kv_source, advertise, server);
  auto ucx_server =
      serve_kv_transfers_ucx(opts.kv_transport, opts.worker_type, kv_source, opts.host,
                             opts.kv_transport_port, advertise, server, *token);
  if (!ucx_server) {
    spdlog::error("--kv-transport {}: {}", opts.kv_transport, ucx_server.status().message());
    return 2;
  }
  if (Status st = server.start(); !st.is_ok()) {
    spdlog::error("request plane: {}", st.message());
    return 2;
  }
  // --request-plane nats: requests arrive on the instance's subject instead (same engine).
  std::unique_ptr<runtime::MessageWorkerServer> nats_server;
  if (opts.runtime.request_plane == "nats") {
    if (!*plane) {
      spdlog::error("--request-plane nats needs --nats-url");
      return 2;
    }
    nats_server = std::make_unique<runtime::MessageWorkerServer>(
        *plane, runtime::request_subject(ep, instance_id), served);
    if (Status st = nats_server->start(); !st.is_ok()) {
      spdlog::error("request plane: {}", st.message());
      return 2;
    }
  }
  auto open_requests = [&] {
    return server.open_requests() + (nats_server ? nats_server->open_requests() : 0);
  };
  const std::string address = advertise + ":" + std::to_string(server.port());

  runtime::ModelCard card;
  card.model_name = model->name();
  card.served_name = opts.served_model_name.empty() ? default_served_name(opts.model, *path)
                                                    : opts.served_model_name;
  card.context_length = engine->max_context();
  card.block_size = engine->block_size();
  card.kv_total_blocks = engine->stats().kv_total_blocks;
  card.max_num_seqs = engine->num_slots();
  card.tokenizer_location = std::filesystem::absolute(*path).string();
  card.address = address;
  card.tensor_parallel_size = opts.engine.tensor_parallel_size;
  card.kv_layout = runtime::kv_layout_string(kv_source->kv_layout());
  const std::string card_key = runtime::model_card_key(ep, instance_id);
  const std::string instance_key = runtime::instance_key(ep, instance_id);
  Status st =
      (*discovery)
          ->register_key(instance_key,
                         runtime::to_json(runtime::InstanceRecord{ep, instance_id, address}));
  if (st.is_ok()) st = (*discovery)->register_key(card_key, runtime::to_json(card));
  if (!st.is_ok()) {
    spdlog::error("cannot register: {}", st.message());
    return 2;
  }
  std::atomic<bool> ready{true};
  std::unique_ptr<WorkerStatusServer> status;
  if (opts.status_port >= 0) {
    status = std::make_unique<WorkerStatusServer>(
        opts.host, static_cast<uint16_t>(opts.status_port),
        WorkerStatusInfo{ep.ns, ep.component, ep.endpoint, instance_id, card.served_name}, engine,
        [&ready] { return ready.load(); });
    if (Status sst = status->start(); !sst.is_ok()) {
      spdlog::error("status port: {}", sst.message());
      return 2;
    }
    spdlog::info("status (/live, /health, /metrics) on {}:{}", opts.host, status->port());
  }
  if (token->empty()) {
    spdlog::warn(
        "request plane on {}:{} serves any peer that reaches it: set "
        "--request-plane-token-file (or TURBINE_REQUEST_PLANE_TOKEN) on workers and "
        "frontends",
        opts.host, server.port());
  } else {
    spdlog::info("request plane on {}:{}: peers must present the shared token", opts.host,
                 server.port());
  }
  spdlog::info("worker {} serving {} on request plane {} (namespace {}, {} blocks of {})",
               runtime::hex_id(instance_id), card.served_name, address, ep.ns, card.kv_total_blocks,
               card.block_size);

  // Load, once per interval, for routers that watch it.
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread load_thread;
  if (*plane) {
    load_thread = std::thread([&] {
      const std::string subject = runtime::load_subject(ep.ns, ep.component);
      std::unique_lock lock(mu);
      while (!cv.wait_for(lock, std::chrono::duration<double>(opts.load_interval_s),
                          [&] { return stopping; })) {
        const engine::EngineStats s = engine->stats();
        (*plane)->publish(subject, runtime::load_to_json(engine::reported_load(instance_id, s)));
      }
    });
  }

  const int sig = wait_for_shutdown_signal();
  // Drain: leave discovery first so no new request is routed here, then let what runs finish.
  spdlog::info("signal {}: deregistering, then finishing {} in-flight requests (grace {:.0f} s)",
               sig, open_requests(), opts.shutdown_grace_s);
  ready = false;
  (void)(*discovery)->unregister_key(card_key);
  (void)(*discovery)->unregister_key(instance_key);
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(opts.shutdown_grace_s * 1000));
  while (open_requests() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  {
    std::lock_guard lock(mu);
    stopping = true;
  }
  cv.notify_all();
  if (load_thread.joinable()) load_thread.join();
  if (nats_server) nats_server->stop();
  server.stop();
  if (*ucx_server) (*ucx_server)->stop();
  if (status) status->stop();
  engine->shutdown();
  (*discovery)->shutdown();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

void add_worker_command(CLI::App& app) {
  auto opts = std::make_shared<WorkerOptions>();
  WorkerOptions& w = *opts;
  auto* cmd = app.add_subcommand("worker", "Serve a model's engine to frontends (distributed)");
  cmd->add_option("--model,-m", w.model, "GGUF file, Hugging Face folder, or Hub repo id")
      ->envname("TURBINE_MODEL");
  cmd->add_option("--revision", w.revision, "Hub revision");
  cmd->add_option("--served-model-name", w.served_model_name, "Model name clients use")
      ->envname("TURBINE_SERVED_MODEL_NAME");
  cmd->add_option("--component", w.component, "Component name")
      ->envname("TURBINE_COMPONENT")
      ->capture_default_str();
  cmd->add_option("--endpoint", w.endpoint, "Endpoint name")->capture_default_str();
  cmd->add_option("--worker-type", w.worker_type,
                  "both, prefill (component `prefill` unless --component names another; serves "
                  "its KV transfers) or decode (pulls imported KV over TCP)")
      ->check(CLI::IsMember({"both", "prefill", "decode"}))
      ->capture_default_str();
  cmd->add_option("--kv-transport", w.kv_transport,
                  "Prefill/both: how decode workers pull this worker's KV: tcp (the request "
                  "plane) or ucx (UCX: RDMA verbs where the host has them, else TCP; UCX_TLS and "
                  "UCX_NET_DEVICES apply). Decode workers pull either kind")
      ->check(CLI::IsMember({"tcp", "ucx"}))
      ->capture_default_str();
  cmd->add_option("--kv-transport-port", w.kv_transport_port,
                  "--kv-transport ucx: the UCX listener's port (0: any free port)")
      ->capture_default_str();
  cmd->add_option("--request-plane-host", w.host, "Address the request plane listens on")
      ->envname("TURBINE_REQUEST_PLANE_HOST")
      ->capture_default_str();
  cmd->add_option("--request-plane-port", w.port, "Request plane port (0: any free port)")
      ->envname("TURBINE_REQUEST_PLANE_PORT")
      ->capture_default_str();
  cmd->add_option("--advertise-host", w.advertise_host,
                  "Host frontends connect to (default: the listen address, or the host name)")
      ->envname("TURBINE_ADVERTISE_HOST");
  cmd->add_option("--request-plane-threads", w.request_plane_threads, "Request plane threads")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--load-interval", w.load_interval_s, "Seconds between load reports")
      ->check(CLI::PositiveNumber);
  add_engine_flags(*cmd, w.engine);
  cmd->add_option("--engine", w.engine_kind,
                  "Engine: real (the model), or mock (simulated time; --model names the "
                  "tokenizer)")
      ->check(CLI::IsMember({"real", "mock"}))
      ->capture_default_str();
  cmd->add_option("--speedup", w.mock.speedup,
                  "Mock engine: simulated seconds per wall-clock second")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--mock-kv-blocks", w.mock.mock_kv_blocks, "Mock engine: KV blocks")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--mock-kv-bytes-per-token", w.mock.mock_kv_bytes_per_token,
                  "Mock engine, --worker-type prefill/decode: simulated KV bytes per token "
                  "(default: Llama-3-8B in BF16; equal on both sides)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--mock-kv-transfer-gbps", w.mock.mock_kv_transfer_gbps,
                  "Mock engine, --worker-type decode/both: simulated inbound KV link, Gb/s")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--status-port", w.status_port,
                  "Port of /live, /health and /metrics (-1: none, 0: any free port)")
      ->envname("TURBINE_STATUS_PORT")
      ->check(CLI::Range(-1, 65535))
      ->capture_default_str();
  cmd->add_option("--shutdown-grace", w.shutdown_grace_s,
                  "Seconds to let in-flight requests finish on SIGTERM")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  w.runtime.add_to(*cmd);
  w.tracing.add_to(*cmd);
  cmd->callback([opts] { std::exit(run_worker(*opts)); });
}

}  // namespace turbine::cli
