#include "mock/mock_engine.h"

#include <cmath>

namespace turbine::mock {

Status MockEngineOptions::validate() const {
  if (n_vocab < 1) return invalid_argument("n_vocab must be >= 1", "n_vocab");
  if (num_blocks < 1) return invalid_argument("num_blocks must be >= 1", "num_blocks");
  if (block_size < 1 || block_size > 1024)
    return invalid_argument("block_size must be in [1, 1024]", "block_size");
  if (max_context < 2) return invalid_argument("max_context must be >= 2", "max_context");
  if (!(speedup > 0) || !std::isfinite(speedup))
    return invalid_argument("speedup must be > 0", "speedup");
  if (kv_bytes_per_token < 1)
    return invalid_argument("kv_bytes_per_token must be >= 1", "kv_bytes_per_token");
  if (!(kv_transfer_gbps > 0) || !std::isfinite(kv_transfer_gbps))
    return invalid_argument("kv_transfer_gbps must be > 0", "kv_transfer_gbps");
  if (!(kv_tier_host_gbps > 0) || !(kv_tier_disk_gbps > 0))
    return invalid_argument("the KV tier bandwidths must be > 0", "kv_tier_host_gbps");
  TURBINE_RETURN_IF_ERROR(kv_offload.validate());
  return engine_options(*this).validate();
}

engine::EngineOptions engine_options(const MockEngineOptions& o) {
  engine::EngineOptions e;
  e.max_num_batched_tokens = o.max_num_batched_tokens;
  e.max_waiting = o.max_waiting;
  e.max_num_seqs = o.max_num_seqs;
  e.enable_prefix_caching = o.enable_prefix_caching;
  e.target_itl_ms = o.target_itl_ms;
  e.target_ttft_ms = o.target_ttft_ms;
  e.scheduling_policy = o.scheduling_policy;
  e.eos_token_ids = o.eos_token_ids;
  e.grammar_compiler = o.grammar_compiler;
  e.kv_event_sink = o.kv_event_sink;
  e.instance_id = o.instance_id;
  e.kv_transfer = o.kv_transfer;
  e.kv_transfer_ttl = o.kv_transfer_ttl;
  e.kv_fetch_timeout = o.kv_fetch_timeout;
  e.kv_link = std::make_shared<SimulatedKvLink>(o.kv_transfer_gbps, o.speedup);
  if (o.kv_tiers) {
    e.kv_tiers = o.kv_tiers;
    e.kv_tier_host_link = std::make_shared<SimulatedKvLink>(o.kv_tier_host_gbps, o.speedup);
    e.kv_tier_disk_link = std::make_shared<SimulatedKvLink>(o.kv_tier_disk_gbps, o.speedup);
  }
  return e;
}

Result<std::shared_ptr<kvtier::TierManager>> simulated_tiers(const MockEngineOptions& o) {
  TURBINE_RETURN_IF_ERROR(o.kv_offload.validate());
  const int64_t modelled = o.kv_bytes_per_token * o.block_size;
  // Budgets in placeholder bytes: as many blocks as the modelled budget holds. A disk slot of a
  // placeholder block is one 4 KiB page (header + padding).
  kvtier::TierOptions t = o.kv_offload;
  t.host_bytes = o.kv_offload.host_bytes / modelled * 64;
  t.disk_bytes = o.kv_offload.disk_bytes / modelled * 4096;
  if (o.kv_offload.host_bytes > 0 && t.host_bytes == 0) {
    return invalid_argument("--kv-offload-host-bytes holds no simulated KV block of " +
                                std::to_string(modelled) + " bytes",
                            "kv_offload_host_bytes");
  }
  TURBINE_ASSIGN_OR_RETURN(auto m, kvtier::TierManager::create(t, kSimulatedTierBlockBytes));
  return std::shared_ptr<kvtier::TierManager>(std::move(m));
}

SimulatedBackendOptions backend_options(const MockEngineOptions& o) {
  SimulatedBackendOptions b;
  b.n_vocab = o.n_vocab;
  b.num_blocks = o.num_blocks;
  b.block_size = o.block_size;
  b.max_context = o.max_context;
  b.speedup = o.speedup;
  b.timing = o.timing;
  b.kv_bytes_per_token = o.kv_bytes_per_token;
  return b;
}

}  // namespace turbine::mock
