// Disaggregated serving, engine side: the KV layout a backend exports, the metadata of a prefill's
// pinned KV blocks, and the interfaces that move those blocks between engines.
//
// A prefill-only request (KvDisagg::prefill_only) runs its prompt, samples the first token and
// finishes; its KV blocks stay pinned in the prefill engine's transfer table under a transfer id
// (released by release_transfer, by the table's TTL, or at shutdown), and its final output carries
// a KvTransferMeta. A decode request with KvDisagg::import (prompt = the prefill's prompt + its
// first token) reuses the decode engine's own prefix cache, fetches only the missing blocks
// through a KvTransfer while the sequence waits ("fetching") and the step loop keeps running,
// writes them into its backend and continues from the first token. Any failure, timeout or
// incompatible layout falls back to computing the prompt locally: never an error to the client.
//
// Thread rules: KvTransfer::fetch's callback and KvTransferSource::read_transfer's callback may run
// on any thread and must not block (they post). No Asio here: the TCP transport lives in runtime/.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turbine::engine {

// The dtype of a simulated backend's KV (mock/): blocks have a size (bytes_per_block, for the time
// a transfer would take) but hold no bytes; exports are empty and transports carry nothing.
inline constexpr std::string_view kSimulatedKvDtype = "sim";

// How a backend stores one KV block, as bytes on the wire: for each layer, K then V, each
// [slot in block][kv_heads * head_dim] of `dtype`. Two engines can exchange blocks iff their
// layouts are equal.
struct KvLayout {
  std::string dtype;  // "f32", "bf16", "f16", "sim"; empty: the backend cannot export its KV
  int block_size = 0;
  int n_layers = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int64_t bytes_per_block = 0;
  bool operator==(const KvLayout&) const = default;
  bool exportable() const { return !dtype.empty() && bytes_per_block > 0; }
  bool simulated() const { return dtype == kSimulatedKvDtype; }
  // Bytes a transfer of n blocks carries: none for a simulated layout.
  int64_t wire_bytes(int n_blocks) const { return simulated() ? 0 : n_blocks * bytes_per_block; }
};

// A prefill's pinned blocks, as handed to the decode side.
struct KvTransferMeta {
  uint64_t transfer_id = 0;  // unique within the source engine
  uint64_t instance_id = 0;  // the source (prefill) worker's instance id
  std::string address;       // TCP host:port of the source's request plane; empty in-process
  KvLayout layout;
  int num_tokens = 0;                  // positions held: [0, num_tokens) of the prompt
  std::vector<int32_t> block_ids;      // the source's blocks, ceil(num_tokens / block_size)
  std::vector<uint64_t> block_hashes;  // chained hashes of the full blocks (kv/block_hash.h)
  // The source backend's Backend::kv_pool_descriptor() (empty: none): a receiver on the same host
  // copies the blocks device to device (CUDA IPC) instead of fetching their bytes.
  std::string device_pool;
};

// Per-request disaggregation fields (EngineRequest::disagg).
struct KvDisagg {
  bool prefill_only = false;                     // run the prompt, sample one token, pin the KV
  std::shared_ptr<const KvTransferMeta> import;  // decode from these blocks (null: none)
};

using KvBytesCallback = std::function<void(Result<std::string>)>;

// One KV transport's counters since start ("tcp", "ucx", "in_process"; the engine adds "cuda_ipc"
// for its device-to-device imports). The one type for transport counters: each transport's own
// stats() returns it too.
struct KvTransportStats {
  std::string transport;
  uint64_t fetches = 0;   // finished, successfully or not
  uint64_t failures = 0;  // of those, failed
  uint64_t bytes = 0;
  double seconds = 0.0;   // sum over successful fetches
  uint64_t connects = 0;  // connections opened (transports that connect; reuse keeps it low)
};

// Adds `from` to `into`, matching entries by transport name.
inline void add_transport_stats(std::vector<KvTransportStats>& into,
                                const std::vector<KvTransportStats>& from) {
  for (const KvTransportStats& f : from) {
    auto it = std::find_if(into.begin(), into.end(),
                           [&](const KvTransportStats& t) { return t.transport == f.transport; });
    if (it == into.end()) {
      into.push_back(f);
      continue;
    }
    it->fetches += f.fetches;
    it->failures += f.failures;
    it->bytes += f.bytes;
    it->seconds += f.seconds;
    it->connects += f.connects;
  }
}

// The receiving side's transport: fetches a transfer's blocks from wherever they live.
class KvTransfer {
 public:
  virtual ~KvTransfer() = default;
  // Bytes of blocks [first_block, first_block + n_blocks) of meta.block_ids, in meta.layout,
  // concatenated. `done` is called exactly once, on any thread.
  virtual void fetch(const KvTransferMeta& meta, int first_block, int n_blocks,
                     KvBytesCallback done) = 0;
  // The receiver is done with the transfer (copied, failed or gave up): the source may unpin it.
  virtual void release(const KvTransferMeta& meta) = 0;
  virtual std::string_view name() const = 0;
  // Counters of each transport it moves bytes with (none when it keeps no counters).
  virtual std::vector<KvTransportStats> transport_stats() const { return {}; }
};

// A model of the receiving engine's inbound KV link, for transports that move no bytes (a
// simulated layout): each fetch of `bytes` occupies the link for a modelled time after the
// fetches booked before it, and its blocks count as arrived only then. Real transports take that
// time themselves (EngineOptions::kv_link null). Owned by one engine; called on its thread only.
class KvLink {
 public:
  using Clock = std::chrono::steady_clock;
  struct Booking {
    Clock::time_point arrives;  // the bytes are in (wall time)
    double seconds = 0.0;       // the modelled transfer time (kv_import_seconds counts this)
  };
  virtual ~KvLink() = default;
  virtual Booking book(int64_t bytes, Clock::time_point now) = 0;
};

// The sending side: an engine that holds pinned transfers (engine::Engine implements it).
class KvTransferSource {
 public:
  virtual ~KvTransferSource() = default;
  // Bytes of blocks [first_block, first_block + n_blocks) of a pinned transfer; NotFound when the
  // transfer is unknown (released, expired). `done` runs on the engine thread: it must not block.
  virtual void read_transfer(uint64_t transfer_id, int first_block, int n_blocks,
                             KvBytesCallback done) = 0;
  virtual void release_transfer(uint64_t transfer_id) = 0;
  virtual KvLayout kv_layout() const = 0;
};

}  // namespace turbine::engine
