#include "cli/disagg_run.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "mock/mock_engine.h"
#include "router/flat_map.h"
#include "runtime/kv_transfer_tcp.h"

namespace turbine::cli {

void add_disagg_run_flags(CLI::App& cmd, DisaggRunOptions& o) {
  cmd.add_option("--prefill-workers", o.prefill_workers,
                 "In-process prefill workers (disaggregated serving; 0: aggregated)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--max-local-prefill-length", o.max_local_prefill_length,
                 "Disaggregated: prompts with at most this many uncached tokens are prefilled on "
                 "the decode worker")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--max-inflight-prefills", o.max_inflight_prefills,
                 "Disaggregated: remote prefills in flight at most (more are prefilled on the "
                 "decode worker; 0: the prefill workers' sequence slots)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

Result<std::unique_ptr<InProcessPrefillPool>> InProcessPrefillPool::start(
    const model::Model& model, const LocalEngineOptions& options,
    const InProcessWorkersOptions& workers, const DisaggRunOptions& disagg,
    LocalEngineOptions& decode_options) {
  if (disagg.prefill_workers < 1) return invalid_argument("--prefill-workers must be >= 1");
  std::unique_ptr<InProcessPrefillPool> p(new InProcessPrefillPool());
  p->options_ = disagg;
  p->transfer_ = std::make_shared<disagg::InProcessKvTransfer>();
  p->pool_ = std::make_shared<router::RoutedEngine>(router::RouterOptions{});
  for (int i = 0; i < disagg.prefill_workers; ++i) {
    // Ids apart from the decode workers' (mix64(1..N)).
    const uint64_t id = router::mix64(0x70726566ULL + static_cast<uint64_t>(i));
    auto sink = std::make_shared<router::RouterKvEventSink>(p->pool_.get(), id);
    if (workers.engine == "mock") {
      TURBINE_ASSIGN_OR_RETURN(mock::MockEngineOptions m,
                               mock_engine_options(model, options, workers));
      m.instance_id = id;
      m.kv_event_sink = std::move(sink);
      auto engine = std::make_shared<mock::MockEngine>(m);
      p->transfer_->add_source(id, engine);
      p->pool_->add_worker({id, engine->block_size(), m.num_blocks}, engine);
      continue;
    }
    LocalEngineOptions e = options;
    e.instance_id = id;
    e.kv_transfer = nullptr;
    e.kv_event_sink = std::move(sink);
    TURBINE_ASSIGN_OR_RETURN(auto made, make_local_engine(model, e));
    std::shared_ptr<engine::Engine> engine = std::move(made);
    p->transfer_->add_source(id, engine);
    p->pool_->add_worker({id, engine->block_size(), engine->stats().kv_total_blocks}, engine);
  }
  decode_options.kv_transfer = p->transfer_;
  spdlog::info(
      "disaggregated serving: {} in-process {} prefill workers, in-process KV transfer{}, "
      "max local prefill length {}",
      disagg.prefill_workers, workers.engine,
      workers.engine == "mock"
          ? fmt::format(" (simulated: {} B/token, {} Gb/s)", workers.mock_kv_bytes_per_token,
                        workers.mock_kv_transfer_gbps)
          : std::string(),
      disagg.max_local_prefill_length);
  return p;
}

InProcessPrefillPool::~InProcessPrefillPool() {
  if (pool_) pool_->shutdown();
}

runtime::ModelEvents InProcessPrefillPool::wrap(runtime::ModelEvents events) {
  runtime::ModelEvents out = events;
  out.added = [this, added = std::move(events.added)](
                  const runtime::ModelCard& card,
                  std::shared_ptr<engine::AsyncEngine> decode) -> Status {
    disagg::DisaggOptions o;
    o.max_local_prefill_length = options_.max_local_prefill_length;
    o.max_inflight_prefills = options_.max_inflight_prefills;
    TURBINE_RETURN_IF_ERROR(o.validate());
    auto cached = decode_cached_tokens(decode);
    return added(card, std::make_shared<disagg::DisaggEngine>(o, pool_, std::move(decode),
                                                              transfer_, std::move(cached)));
  };
  return out;
}

disagg::CachedTokensFn decode_cached_tokens(const std::shared_ptr<engine::AsyncEngine>& decode) {
  auto* routed = dynamic_cast<router::RoutedEngine*>(decode.get());
  if (routed == nullptr) return {};
  // The DisaggEngine holds `decode`, so the router outlives this function.
  return [routed](std::span<const int32_t> prompt) { return routed->cached_prefix_tokens(prompt); };
}

Status configure_disagg_worker(const std::string& worker_type, uint64_t instance_id,
                               LocalEngineOptions& options, const std::string& token) {
  if (worker_type != "both" && worker_type != "prefill" && worker_type != "decode")
    return invalid_argument("--worker-type must be both, prefill or decode", "worker_type");
  options.instance_id = instance_id;
  // "ucx://" addresses (prefill workers with --kv-transport ucx) over UCX, the rest over TCP.
  if (worker_type != "prefill") {
    runtime::TcpKvTransferOptions tcp;
    tcp.token = token;
    runtime::UcxKvTransferOptions ucx;
    ucx.token = token;
    options.kv_transfer = std::make_shared<runtime::DispatchKvTransfer>(
        std::make_shared<runtime::TcpKvTransfer>(tcp), ucx);
  }
  return Status::ok();
}

void serve_kv_transfers(const std::string& worker_type,
                        const std::shared_ptr<engine::AsyncEngine>& engine,
                        const std::string& advertise_host, runtime::WorkerServer& server) {
  if (worker_type == "decode") return;
  if (auto source = std::dynamic_pointer_cast<engine::KvTransferSource>(engine))
    server.set_kv_source(std::move(source), advertise_host);
}

Result<std::unique_ptr<runtime::UcxKvServer>> serve_kv_transfers_ucx(
    const std::string& kv_transport, const std::string& worker_type,
    const std::shared_ptr<engine::AsyncEngine>& engine, const std::string& listen_host,
    uint16_t port, const std::string& advertise_host, runtime::WorkerServer& server,
    const std::string& token) {
  if (kv_transport != "ucx" && kv_transport != "tcp")
    return invalid_argument("--kv-transport must be tcp or ucx", "kv_transport");
  std::unique_ptr<runtime::UcxKvServer> none;
  if (kv_transport == "tcp" || worker_type == "decode") return none;
  auto source = std::dynamic_pointer_cast<engine::KvTransferSource>(engine);
  if (!source) return invalid_argument("--kv-transport ucx: this engine serves no KV transfers");
  TURBINE_ASSIGN_OR_RETURN(auto ucx,
                           runtime::UcxKvServer::start(source, {listen_host, port, token}));
  const bool v6 = advertise_host.find(':') != std::string::npos;
  server.set_kv_address(std::string(runtime::kUcxScheme) +
                        (v6 ? "[" + advertise_host + "]" : advertise_host) + ":" +
                        std::to_string(ucx->port()));
  spdlog::info("KV transfers served over UCX on {}:{} (UCX_TLS={})", listen_host, ucx->port(),
               std::getenv("UCX_TLS") ? std::getenv("UCX_TLS") : "default");
  return ucx;
}

}  // namespace turbine::cli
