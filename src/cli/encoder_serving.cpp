#include "cli/encoder_serving.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/asio/ip/host_name.hpp>

#include "cli/signals.h"
#include "cli/worker_status.h"
#include "runtime/model_card.h"
#include "runtime/request_plane.h"
#ifdef TURBINE_HAVE_CUDA
#include "cuda/cuda_encoder_backend.h"
#endif

namespace turbine::cli {
namespace {

Result<std::unique_ptr<encoder::EncoderBackend>> make_backend(const encoder::EncoderModel& model,
                                                              const LocalEngineOptions& opts,
                                                              int max_batch_tokens) {
  if (opts.device == "cpu") {
    encoder::EncoderBackendOptions o;
    o.n_threads = opts.threads;
    o.max_batch_tokens = max_batch_tokens;
    return encoder::make_encoder_backend(model, o);
  }
  if (opts.device != "cuda")
    return invalid_argument("--device must be cpu or cuda, not '" + opts.device + "'", "device");
#ifdef TURBINE_HAVE_CUDA
  if (model.weights() == nullptr) {
    return unimplemented("--device cuda: decoder embedders (" + model.config().arch_name +
                             ") run on the CPU for now; BERT, RoBERTa and ModernBERT run on CUDA",
                         "device");
  }
  cuda::CudaEncoderOptions o;
  if (opts.dtype == "bf16") {
    o.dtype = model::DType::kBF16;
  } else if (opts.dtype == "f16") {
    o.dtype = model::DType::kF16;
  } else if (opts.dtype == "f32") {
    o.dtype = model::DType::kF32;
  } else {
    return invalid_argument("--dtype must be bf16, f16 or f32", "dtype");
  }
  o.max_batch_tokens = max_batch_tokens;
  return cuda::make_cuda_encoder_backend(model.config(), *model.weights(), o);
#else
  return unimplemented(
      "--device cuda: this turbine was built without CUDA (configure with -DTURBINE_CUDA=ON)",
      "device");
#endif
}

// The encoder's in-flight calls as engine stats, for a worker's status port (/metrics).
class EncoderStatsEngine final : public engine::AsyncEngine {
 public:
  explicit EncoderStatsEngine(std::shared_ptr<encoder::EncoderService> service)
      : service_(std::move(service)) {}
  Status submit(engine::EngineRequest) override {
    return invalid_argument("an encoder model does not generate text", "model");
  }
  void cancel(uint64_t) override {}
  void shutdown() override {}
  engine::EngineStats stats() const override {
    engine::EngineStats s;
    const encoder::EncoderEngineStats e = service_->stats();
    s.running = service_->in_flight();
    s.waiting = static_cast<int>(e.queued);
    s.steps = e.batches;
    s.prompt_tokens = e.tokens;
    return s;
  }
  int max_context() const override { return service_->max_tokens(); }
  int num_slots() const override { return 0; }
  int block_size() const override { return 1; }

 private:
  std::shared_ptr<encoder::EncoderService> service_;
};

}  // namespace

Result<std::shared_ptr<encoder::EncoderService>> make_encoder_service(
    const std::filesystem::path& path, const LocalEngineOptions& engine) {
  const auto t0 = std::chrono::steady_clock::now();
  TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<encoder::EncoderModel> loaded,
                           encoder::EncoderModel::load(path));
  std::shared_ptr<const encoder::EncoderModel> model(std::move(loaded));
  encoder::EncoderServiceOptions o;
  o.engine.max_batch_tokens =
      std::max(engine.max_num_batched_tokens, engine.device == "cuda" ? 32768 : 8192);
  o.engine.max_batch_seqs = std::max(engine.max_num_seqs, 256);
  TURBINE_RETURN_IF_ERROR(o.engine.validate());
  TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<encoder::EncoderBackend> backend,
                           make_backend(*model, engine, o.engine.max_batch_tokens));
  const encoder::EncoderConfig& c = model->config();
  spdlog::info(
      "encoder model {} ({}, {}): {} layers, dim {}, {} heads, max {} tokens; {} backend, "
      "batches of up to {} tokens; loaded in {:.1f} ms",
      model->name(), c.arch_name, encoder::task_name(model->task()), c.n_layers, c.dim, c.n_heads,
      model->max_tokens(), backend->name(), o.engine.max_batch_tokens,
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  return std::make_shared<encoder::EncoderService>(std::move(model), std::move(backend), o);
}

int run_encoder_server(const EncoderRunArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  auto service = make_encoder_service(a.path, a.engine);
  if (!service) {
    spdlog::error("cannot load the encoder model: {}", service.status().message());
    return 2;
  }
  auto front = frontend::Frontend::create(a.http);
  if (!front) {
    spdlog::error("{}", front.status().message());
    return 2;
  }
  frontend::ServedModel served;
  served.name = a.http.served_model_name;
  served.encoder = *service;
  if (Status st = (*front)->add_model(std::move(served)); !st.is_ok()) {
    spdlog::error("{}", st.message());
    return 2;
  }
  if (Status st = (*front)->start(); !st.is_ok()) {
    spdlog::error("cannot start the HTTP server: {}", st.message());
    return 2;
  }
  spdlog::info(
      "serving {} ({}) on http://{}:{} (ready in {:.0f} ms)", a.http.served_model_name,
      encoder::task_name((*service)->task()), a.http.host, (*front)->port(),
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  const int sig = wait_for_shutdown_signal();
  spdlog::info("signal {} received: finishing in-flight requests (grace {:.0f} s)", sig,
               a.shutdown_grace_s);
  (*front)->shutdown(std::chrono::milliseconds(static_cast<int64_t>(a.shutdown_grace_s * 1000)));
  (*service)->shutdown();
  spdlog::info("stopped");
  return 0;
}

int run_encoder_worker(const EncoderWorkerArgs& a) {
  auto service = make_encoder_service(a.path, a.engine);
  if (!service) {
    spdlog::error("cannot load the encoder model: {}", service.status().message());
    return 2;
  }
  auto discovery = a.runtime.make_discovery();
  if (!discovery) {
    spdlog::error("discovery: {}", discovery.status().message());
    return 2;
  }
  const uint64_t instance_id = (*discovery)->instance_id();
  auto token = a.runtime.request_plane_token();
  if (!token) {
    spdlog::error("{}", token.status().message());
    return 2;
  }
  if (a.runtime.request_plane == "nats") {
    spdlog::warn("--request-plane nats: encoder workers serve the TCP request plane only");
  }
  runtime::WorkerServerOptions sopts;
  sopts.host = a.host;
  sopts.port = a.port;
  sopts.n_threads = a.request_plane_threads;
  sopts.token = *token;
  runtime::WorkerServer server(sopts, nullptr);
  server.set_encoder(*service);
  if (Status st = server.start(); !st.is_ok()) {
    spdlog::error("request plane: {}", st.message());
    return 2;
  }
  std::string advertise = a.advertise_host;
  if (advertise.empty()) advertise = a.host != "0.0.0.0" ? a.host : boost::asio::ip::host_name();
  const std::string address = advertise + ":" + std::to_string(server.port());

  const encoder::EncoderService& s = **service;
  const encoder::EncoderInfo info = s.info();
  runtime::ModelCard card;
  card.model_name = s.model().name();
  card.served_name = a.served_name;
  card.context_length = s.max_tokens();
  card.block_size = 1;
  card.kv_total_blocks = 0;
  card.max_num_seqs = 0;
  card.tokenizer_location = std::filesystem::absolute(a.path).string();
  card.address = address;
  card.task = encoder::task_name(info.task);
  card.embedding_dim = info.hidden_dim;
  card.max_inputs = static_cast<int64_t>(info.max_inputs);
  card.labels = info.labels;
  const std::string card_key = runtime::model_card_key(a.endpoint, instance_id);
  const std::string instance_key = runtime::instance_key(a.endpoint, instance_id);
  Status st = (*discovery)
                  ->register_key(instance_key, runtime::to_json(runtime::InstanceRecord{
                                                   a.endpoint, instance_id, address}));
  if (st.is_ok()) st = (*discovery)->register_key(card_key, runtime::to_json(card));
  if (!st.is_ok()) {
    spdlog::error("cannot register: {}", st.message());
    return 2;
  }
  std::atomic<bool> ready{true};
  std::unique_ptr<WorkerStatusServer> status;
  if (a.status_port >= 0) {
    status = std::make_unique<WorkerStatusServer>(
        a.host, static_cast<uint16_t>(a.status_port),
        WorkerStatusInfo{a.endpoint.ns, a.endpoint.component, a.endpoint.endpoint, instance_id,
                         card.served_name},
        std::make_shared<EncoderStatsEngine>(*service), [&ready] { return ready.load(); });
    if (Status sst = status->start(); !sst.is_ok()) {
      spdlog::error("status port: {}", sst.message());
      return 2;
    }
    spdlog::info("status (/live, /health, /metrics) on {}:{}", a.host, status->port());
  }
  spdlog::info("encoder worker {} serving {} ({}) on request plane {} (namespace {})",
               runtime::hex_id(instance_id), card.served_name, card.task, address, a.endpoint.ns);

  const int sig = wait_for_shutdown_signal();
  spdlog::info("signal {}: deregistering, then finishing {} in-flight requests (grace {:.0f} s)",
               sig, server.open_requests(), a.shutdown_grace_s);
  ready = false;
  (void)(*discovery)->unregister_key(card_key);
  (void)(*discovery)->unregister_key(instance_key);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(a.shutdown_grace_s * 1000));
  while (server.open_requests() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  server.stop();
  if (status) status->stop();
  (*service)->shutdown();
  (*discovery)->shutdown();
  spdlog::info("stopped");
  return 0;
}

Result<std::unique_ptr<EncoderModels>> EncoderModels::start(frontend::Frontend& front,
                                                            runtime::Discovery& discovery,
                                                            const RuntimeFlags& flags,
                                                            int pool_size, int n_threads,
                                                            int retry_limit) {
  TURBINE_ASSIGN_OR_RETURN(std::string token, flags.request_plane_token());
  runtime::RemoteEngineOptions base;  // as RuntimeFlags::make_connector's TCP connections
  base.token = std::move(token);
  base.silence_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(flags.request_plane_silence_timeout_s * 1000));
  base.ping_interval = std::min(std::chrono::milliseconds(1000), base.silence_timeout / 3);
  std::unique_ptr<EncoderModels> m(new EncoderModels());
  m->connector_ =
      std::make_unique<runtime::TcpEncoderConnector>(pool_size, n_threads, std::move(base));
  runtime::EncoderModelEvents events{
      [&front](const runtime::ModelCard& card, std::shared_ptr<encoder::AsyncEncoder> enc) {
        frontend::ServedModel served;
        served.name = card.served_name;
        served.encoder = std::move(enc);
        return front.add_model(std::move(served));
      },
      [&front](const std::string& name) { front.remove_model(name); }};
  m->watcher_ = std::make_unique<runtime::EncoderWatcher>(
      flags.ns, discovery,
      [c = m->connector_.get()](const runtime::ParsedKey& key, const runtime::ModelCard& card) {
        return c->connect(key, card);
      },
      std::move(events), retry_limit);
  TURBINE_RETURN_IF_ERROR(m->watcher_->start());
  return m;
}

EncoderModels::~EncoderModels() {
  if (watcher_) watcher_->stop();
  watcher_.reset();
  connector_.reset();
}

}  // namespace turbine::cli
