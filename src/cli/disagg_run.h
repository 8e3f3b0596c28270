// Disaggregated serving in the CLI (issue 8).
//
// `turbine run --prefill-workers N`: N in-process prefill engines behind their own KV-aware
// router, an InProcessKvTransfer between them and the decode workers (the usual `--workers`), and
// a disagg::DisaggEngine in front of each model the watcher announces. `turbine worker
// --worker-type prefill|decode|both`: the worker's WorkerServer serves its pinned transfers
// (prefill, both; `--kv-transport ucx`: a UcxKvServer too) and its engine pulls imports over TCP
// or UCX, by the address (decode, both).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/in_process_workers.h"
#include "cli/local_engine.h"
#include "disagg/disagg_engine.h"
#include "disagg/in_process_transfer.h"
#include "router/routed_engine.h"
#include "runtime/kv_transfer_ucx.h"
#include "runtime/model_watcher.h"
#include "runtime/request_plane.h"

namespace turbine::cli {

struct DisaggRunOptions {
  int prefill_workers = 0;  // 0: aggregated serving
  int max_local_prefill_length = 1000;
  int max_inflight_prefills = 0;  // 0: the prefill pool's sequence slots
};

void add_disagg_run_flags(CLI::App& cmd, DisaggRunOptions& options);

class InProcessPrefillPool {
 public:
  // Builds the prefill engines; `decode_options` gets the transfer the decode workers fetch with.
  // `workers.engine` "mock": simulated prefill engines (MockEngine) with workers' mock flags.
  static Result<std::unique_ptr<InProcessPrefillPool>> start(const model::Model& model,
                                                             const LocalEngineOptions& options,
                                                             const InProcessWorkersOptions& workers,
                                                             const DisaggRunOptions& disagg,
                                                             LocalEngineOptions& decode_options);
  ~InProcessPrefillPool();  // stops the prefill engines
  // `events` with every announced model served through a DisaggEngine over this pool.
  runtime::ModelEvents wrap(runtime::ModelEvents events);

 private:
  InProcessPrefillPool() = default;
  DisaggRunOptions options_;
  std::shared_ptr<disagg::InProcessKvTransfer> transfer_;
  std::shared_ptr<router::RoutedEngine> pool_;
};

// The policy's input: the decode pool's cached prefix of a prompt, when `decode` is a router
// (its index's best worker); empty otherwise (the whole prompt counts as uncached).
disagg::CachedTokensFn decode_cached_tokens(const std::shared_ptr<engine::AsyncEngine>& decode);

// `turbine worker --worker-type`: validates it and sets the engine options of that role; KV pulls
// present `token` (the request-plane token of the prefill workers; "" for none).
Status configure_disagg_worker(const std::string& worker_type, uint64_t instance_id,
                               LocalEngineOptions& options, const std::string& token);
// Prefill and both: `server` serves `engine`'s pinned transfers (before server.start()).
void serve_kv_transfers(const std::string& worker_type,
                        const std::shared_ptr<engine::AsyncEngine>& engine,
                        const std::string& advertise_host, runtime::WorkerServer& server);
// `--kv-transport ucx` (the "rdma" switch), prefill and both: a UcxKvServer on
// listen_host:port serves `engine`'s pinned transfers and `server` stamps "ucx://advertise_host:
// port" on them (call before server.start()); pullers must present `token` ("" for none). tcp, or
// a decode worker: null. Unimplemented when the build has no UCX; Unavailable when UCX cannot
// start.
Result<std::unique_ptr<runtime::UcxKvServer>> serve_kv_transfers_ucx(
    const std::string& kv_transport, const std::string& worker_type,
    const std::shared_ptr<engine::AsyncEngine>& engine, const std::string& listen_host,
    uint16_t port, const std::string& advertise_host, runtime::WorkerServer& server,
    const std::string& token);

}  // namespace turbine::cli
