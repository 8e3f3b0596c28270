#include "cli/disagg_run.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

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
                        const std::shared_ptr<engine::KvTransferSource>& source,
                        const std::string& advertise_host, runtime::WorkerServer& server) {
  if (worker_type == "decode" || !source) return;
  server.set_kv_source(source, advertise_host);
}

Result<std::unique_ptr<runtime::UcxKvServer>> serve_kv_transfers_ucx(
    const std::string& kv_transport, const std::string& worker_type,
    const std::shared_ptr<engine::KvTransferSource>& source, const std::string& listen_host,
    uint16_t port, const std::string& advertise_host, runtime::WorkerServer& server,
    const std::string& token) {
  if (kv_transport != "ucx" && kv_transport != "tcp")
    return invalid_argument("--kv-transport must be tcp or ucx", "kv_transport");
  std::unique_ptr<runtime::UcxKvServer> none;
  if (kv_transport == "tcp" || worker_type == "decode") return none;
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
