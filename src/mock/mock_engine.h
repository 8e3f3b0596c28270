// MockEngine: engine::Engine over the simulated backend (mock/simulated_backend.h), for routing,
// planning and benchmarks with many workers on a CPU (`--engine mock`, `--speedup`). Scheduling,
// the kv::BlockPool with prefix caching and its real KV events, continuous batching, chunked
// prefill, preemption and disaggregated serving are the real engine's; only the backend and the
// inbound KV link are simulated.
//
// Disaggregated serving, simulated: a prefill-only request runs its prompt (prefill time from the
// timing model), samples the first token, finishes, and keeps its blocks pinned in the engine's
// transfer table (release_transfer, kv_transfer_ttl or shutdown unpin them); its KvTransferMeta
// has the layout {dtype "sim", block_size, bytes_per_block = kv_bytes_per_token * block_size}.
// An import reuses this engine's own prefix cache and fetches only the missing blocks through
// options.kv_transfer (e.g. disagg::InProcessKvTransfer over mock sources), which carries no
// bytes; the blocks count as arrived after missing bytes / kv_transfer_gbps of simulated time on
// the engine's one inbound link (SimulatedKvLink: fetches queue behind each other, a NIC per
// decode GPU). A failed, timed-out or refused fetch prefills locally, as engine::Engine does.
//
// Threads: engine::Engine's (submit/cancel from any thread; the engine thread owns the sequences,
// calls output callbacks and publishes KV events).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "engine/engine.h"
#include "engine/kv_transfer.h"
#include "kv/protocol.h"
#include "kvtier/tier_manager.h"
#include "mock/simulated_backend.h"
#include "mock/simulated_kv_link.h"

namespace turbine::mock {

struct MockEngineOptions {
  int32_t n_vocab = 32000;
  std::vector<int32_t> eos_token_ids;
  int num_blocks = 16384;  // KV blocks (16384 x 16 = 256k token positions)
  int block_size = 16;
  int max_context = 131072;
  int max_num_seqs = 256;
  int max_num_batched_tokens = 8192;
  int max_waiting = 100000;
  bool enable_prefix_caching = true;
  // Latency targets in simulated milliseconds (engine::EngineOptions); 0: off.
  double target_itl_ms = 0;
  double target_ttft_ms = 0;
  engine::SchedulingPolicy scheduling_policy = engine::SchedulingPolicy::kFcfs;
  double speedup = 1.0;  // simulated seconds per wall-clock second
  MockTiming timing;
  std::shared_ptr<kv::KvEventSink> kv_event_sink;  // null: no KV events
  // Disaggregated serving (simulated; see above).
  uint64_t instance_id = 0;  // stamped into prefill-only outputs' KvTransferMeta
  int64_t kv_bytes_per_token = int64_t{128} << 10;  // Llama-3-8B BF16: 32 x 8 x 128 x 2 x 2 B
  // The decode side's inbound KV link in gigabits/s of simulated time. 200: half of the one
  // 400 Gb/s NIC an H100 node has per GPU (RDMA of paged blocks rarely reaches line rate).
  double kv_transfer_gbps = 200.0;
  std::shared_ptr<engine::KvTransfer> kv_transfer;     // null: imports prefill locally
  std::chrono::milliseconds kv_transfer_ttl{60'000};   // wall time; unreleased pins are freed
  std::chrono::milliseconds kv_fetch_timeout{10'000};  // wall time, for the source's answer
  // Structured outputs (engine::EngineOptions::grammar_compiler): the simulated tokens are drawn
  // inside the mask. Null: constrained requests are refused.
  std::shared_ptr<structured::GrammarCompiler> grammar_compiler;
  // KV tiers, simulated (issue 24): the real engine's tier logic and a real kvtier::TierManager
  // (LRU, budgets, frequency filter, KV events with storage_tier), whose blocks are placeholders
  // of kSimulatedTierBlockBytes standing for kv_bytes_per_token x block_size modelled bytes each
  // (simulated_tiers() scales the budgets), so routing with tiers can be simulated at scale.
  // Onboarded blocks arrive after their modelled bytes / the tier's bandwidth of simulated time
  // (one link per tier and engine; Gb/s: PCIe Gen5 x16 for host, one NVMe SSD for disk).
  kvtier::TierOptions kv_offload;
  double kv_tier_host_gbps = 400.0;
  double kv_tier_disk_gbps = 50.0;
  std::shared_ptr<kvtier::TierManager> kv_tiers;  // simulated_tiers(*this); null: no tiers

  Status validate() const;
};

inline constexpr int64_t kSimulatedTierBlockBytes = 64;
// The simulated tiers for these options (kv_offload), budgets in modelled bytes; errors name the
// flag (a disk path that cannot be written, a budget that holds no block).
Result<std::shared_ptr<kvtier::TierManager>> simulated_tiers(const MockEngineOptions& options);

// The engine's options and the backend's, from the mock's.
engine::EngineOptions engine_options(const MockEngineOptions& options);
SimulatedBackendOptions backend_options(const MockEngineOptions& options);

class MockEngine final : public engine::Engine {
 public:
  explicit MockEngine(const MockEngineOptions& options)
      : MockEngine(options, std::make_shared<SimulatedClock>(0.0)) {}

  // Simulated milliseconds of all steps so far (independent of speedup). Any thread.
  double simulated_ms() const { return clock_->load(); }

 private:
  MockEngine(const MockEngineOptions& options, std::shared_ptr<SimulatedClock> clock)
      : engine::Engine(std::make_unique<SimulatedBackend>(backend_options(options), clock),
                       options.n_vocab, engine_options(options)),
        clock_(std::move(clock)) {}

  const std::shared_ptr<SimulatedClock> clock_;
};

}  // namespace turbine::mock
