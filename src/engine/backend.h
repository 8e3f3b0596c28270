// The backend interface: one forward pass over a batch of sequence chunks.
//
// CPU now, CUDA later, both behind these calls. A backend owns the memory of a paged KV cache (a
// fixed number of blocks); the engine thread is the only caller (backends need no locking of their
// own) and decides which blocks each sequence uses.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/kv_transfer.h"
#include "engine/sampling.h"
#include "engine/step_model.h"
#include "kvtier/tier.h"
#include "model/model.h"

namespace turbine::engine {

// One sequence's contribution to a step: `tokens` occupy positions [pos, pos + tokens.size()) of
// the sequence whose KV lives in `block_table`: position p is slot p % block_size() of block
// block_table[p / block_size()]. Positions before `pos` must already be in those blocks. Blocks a
// chunk writes must not be written by another chunk of the same step; full blocks may be shared
// (read) by several chunks (prefix caching).
struct SeqChunk {
  std::span<const int32_t> block_table;
  int pos = 0;
  std::span<const int32_t> tokens;
  bool want_logits = true;  // logits of the chunk's last token are returned
  // Prompt logprobs (Backend::supports_all_logits): logits of EVERY token of the chunk are
  // returned, tokens.size() rows in token order, whatever want_logits says (the last row is the
  // one want_logits would have returned). Memory: one n_vocab row per chunk token, for the step.
  bool all_logits = false;
};

// Token selection a backend may do itself for one logits row, so that only token ids (not n_vocab
// logits) leave the device: temperature, top-k, top-p, seeded. The draw for a given (seed, step)
// must not depend on the rest of the batch. Greedy (temperature <= 0) is the argmax, lowest id on
// ties, exactly as the CPU sampler computes it on the same logits.
struct RowSampling {
  float temperature = 1.0f;  // <= 0: greedy
  int32_t top_k = 0;         // <= 0: off
  float top_p = 1.0f;        // >= 1: off
  uint64_t seed = 0;
  uint64_t step = 0;     // index of the token being drawn in its sequence
  bool on_host = false;  // the caller samples this row itself from the returned logits
  // Structured outputs (backends with supports_sampling_mask() only): writes this row's
  // allowed-token bitmask, ceil(n_vocab / 32) words, bit (id % 32) of word (id / 32) set =
  // allowed; the draw is restricted to those ids. The backend calls it on the engine thread after
  // it queued the step's forward pass and before it samples, so the host computes the masks while
  // the device computes the logits. Empty: unconstrained.
  std::function<void(uint32_t* words)> fill_mask;
  // Added to the row's logits first (SamplingParams::logit_bias); at most kMaxDeviceLogitBias
  // entries (rows with more are sampled on the host).
  std::span<const std::pair<int32_t, float>> logit_bias;
};
inline constexpr size_t kMaxDeviceLogitBias = 16;

// One logits row as a backend that samples every row itself sees it (Backend::samples_all_rows).
struct SampleRow {
  const SamplingParams* params = nullptr;  // everything the request asked for (logprobs too)
  uint64_t seed = 0;         // the request's seed, else one the engine drew for the sequence
  uint64_t prompt_hash = 0;  // kv::local_block_hash of the request's prompt: a stable identity
  int n_generated = 0;       // index of the token being drawn in its sequence
  // Ids that must not be drawn now: the stop ids, and EOS unless ignored, before min_tokens.
  std::span<const int32_t> suppressed;
  // Structured outputs: the allowed-token bitmask (as RowSampling::fill_mask writes it); empty:
  // unconstrained.
  std::span<const uint32_t> allowed;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual int max_context() const = 0;
  // The paged KV cache: num_blocks() blocks of block_size() positions each. Which block holds what
  // is the caller's business (kv::BlockPool); the backend only stores and reads them.
  virtual int num_blocks() const = 0;
  virtual int block_size() const = 0;
  // Runs all chunks as one step. `logits` is resized to (number of chunks with want_logits, plus
  // tokens.size() - want_logits for chunks with all_logits) x n_vocab, in chunk order. On error
  // nothing the caller relies on has changed except the contents of the blocks the chunks write.
  virtual Status forward(std::span<const SeqChunk> chunks, std::vector<float>& logits) = 0;

  // Whether forward() honours SeqChunk::all_logits (prompt logprobs). Steps with such a chunk
  // always go through forward(), never forward_sample()/forward_sample_all().
  virtual bool supports_all_logits() const { return false; }

  // Optional: the final hidden state (after the output norm, before the LM head) of the last
  // token of each chunk with want_logits, in chunk order, instead of logits: decoder models used
  // as embedders (last-token pooling). `hidden` is resized to rows x model dim.
  virtual Status forward_hidden(std::span<const SeqChunk> chunks, std::vector<float>& hidden) {
    (void)chunks;
    (void)hidden;
    return unimplemented("this backend does not return hidden states");
  }

  // Optional: sampling on the backend's device. When supports_sampling(), forward_sample() runs
  // the step like forward() and, for logits row r (chunks with want_logits, in order; `rows` has
  // one entry each), sets tokens[r] to a token drawn under rows[r], or to -1 where
  // rows[r].on_host; `logits` receives the rows marked on_host only (packed, in row order).
  virtual bool supports_sampling() const { return false; }
  // Whether forward_sample honours RowSampling::fill_mask (structured outputs on the device);
  // otherwise constrained rows are sampled on the host.
  virtual bool supports_sampling_mask() const { return false; }
  virtual Status forward_sample(std::span<const SeqChunk> chunks, std::span<const RowSampling> rows,
                                std::vector<int32_t>& tokens, std::vector<float>& logits) {
    (void)chunks;
    (void)rows;
    (void)tokens;
    (void)logits;
    return unimplemented("this backend does not sample on its device");
  }

  // Optional: a backend that chooses every row's token itself whatever its sampling parameters,
  // and materialises no logits at all: the simulated backend (mock/), which computes nothing.
  // When samples_all_rows(), the engine calls forward_sample_all() for every step instead of
  // forward()/forward_sample(); `tokens` receives one SampledToken per row (logprobs included
  // where asked), in row order.
  virtual bool samples_all_rows() const { return false; }
  virtual Status forward_sample_all(std::span<const SeqChunk> chunks,
                                    std::span<const SampleRow> rows,
                                    std::vector<SampledToken>& tokens) {
    (void)chunks;
    (void)rows;
    (void)tokens;
    return unimplemented("this backend does not sample every row itself");
  }

  // Optional: the seconds the last step took, for a backend whose steps take modelled time (the
  // simulated backend reports the time it models, not the time it slept); < 0: the engine
  // measures the step's wall time.
  virtual double last_step_seconds() const { return -1.0; }

  // Optional: the step-time model's prior (engine/step_model.h), before the engine has measured
  // any step of this backend; the default is an 8B model on one H100.
  virtual StepCoefficients step_time_prior() const { return default_step_prior(); }
  // Optional: the backend's clock in milliseconds, read from ANY thread; latency targets and queue
  // waits are measured on it, in the same time as last_step_seconds(). The default is the steady
  // clock; the simulated backend's is its simulated time (the sum of its modelled steps).
  virtual double clock_ms() const {
    return std::chrono::duration<double, std::milli>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // Optional: called from any thread (the only call that may be) when the engine shuts down, so
  // that a backend waiting inside a step (the simulated backend sleeps the modelled step time)
  // returns soon. Backends that compute ignore it.
  virtual void interrupt() {}

  // Optional: KV export/import for disaggregated serving (engine/kv_transfer.h). kv_layout()
  // describes a block's bytes (dtype empty: not supported; a simulated layout: no bytes at all,
  // exports are empty and imports carry none). read_kv_blocks appends the bytes of
  // `blocks` (layout order, block after block) to `out`; write_kv_blocks stores such bytes into
  // `blocks`, which then hold `n_positions` positions counted from the first block's slot 0 (all
  // but the last block full). Both run on the engine thread, between steps.
  virtual KvLayout kv_layout() const { return {}; }
  virtual Status read_kv_blocks(std::span<const int32_t> blocks, std::string& out) {
    (void)blocks;
    (void)out;
    return unimplemented("this backend cannot export KV blocks");
  }
  virtual Status write_kv_blocks(std::span<const int32_t> blocks, std::string_view bytes,
                                 int n_positions) {
    (void)blocks;
    (void)bytes;
    (void)n_positions;
    return unimplemented("this backend cannot import KV blocks");
  }

  // Optional: asynchronous KV offload (kvtier/, issue 24). Enqueues the copy of each of `blocks`
  // into dst[i] (kv_layout().bytes_per_block each, layout order; host memory from host_memory()
  // that stays valid until the copy is done) and returns a ticket for poll_kv_copy. The copy
  // reads the blocks as they are at this call: the backend orders it before any later forward
  // pass or KV write (CUDA: a copy stream that waits for the compute stream, and a compute stream
  // that waits on the copy's event, on the device; the engine thread never waits). Engine thread,
  // between steps. The default copies synchronously (read_kv_blocks) and returns a done ticket.
  virtual Result<uint64_t> read_kv_blocks_async(std::span<const int32_t> blocks,
                                                std::span<uint8_t* const> dst) {
    std::string bytes;
    TURBINE_RETURN_IF_ERROR(read_kv_blocks(blocks, bytes));
    const size_t per_block = blocks.empty() ? 0 : bytes.size() / blocks.size();
    for (size_t i = 0; i < dst.size() && i < blocks.size(); ++i)
      std::memcpy(dst[i], bytes.data() + i * per_block, per_block);
    return uint64_t{0};
  }
  // nullopt while the copy of `ticket` is in flight; then its outcome, once (the ticket is
  // forgotten). Never blocks. Ticket 0 is done and ok.
  virtual std::optional<Status> poll_kv_copy(uint64_t ticket) {
    (void)ticket;
    return Status::ok();
  }
  // Blocks until the copy of `ticket` is done (shutdown); its outcome, once.
  virtual Status wait_kv_copy(uint64_t ticket) {
    (void)ticket;
    return Status::ok();
  }

  // Optional: write_kv_blocks for KV tier onboarding (kvtier/) that need not be complete on
  // return: `bytes` is consumed (copied) before it returns, and the backend orders the write
  // before any later forward pass or KV access (CUDA: a copy stream from pinned staging, the
  // compute stream waiting on its event on the device). Engine thread, between steps. The
  // default is write_kv_blocks.
  virtual Status write_kv_blocks_async(std::span<const int32_t> blocks, std::string_view bytes,
                                       int n_positions) {
    return write_kv_blocks(blocks, bytes, n_positions);
  }

  // Optional: the memory a KV host tier (kvtier/) should use so that read_kv_blocks and
  // write_kv_blocks copy at full speed: the CUDA backend's is pinned (page-locked); null: plain
  // host memory.
  virtual std::shared_ptr<kvtier::HostMemory> host_memory() const { return nullptr; }

  // Optional: direct device-to-device import (CUDA IPC between processes on one host; no host
  // copy). kv_pool_descriptor() describes this backend's KV pool so that a peer backend can map it
  // (opaque bytes, carried in KvTransferMeta::device_pool; empty: none). copy_kv_blocks_from_pool
  // copies `src_blocks` of such a pool into `blocks` (n_positions as for write_kv_blocks), or
  // fails without side effects when that pool cannot be reached from here (another host, another
  // layout, no peer access): the engine then moves the bytes through its KvTransfer instead.
  virtual std::string kv_pool_descriptor() const { return {}; }
  virtual Status copy_kv_blocks_from_pool(std::string_view descriptor,
                                          std::span<const int32_t> src_blocks,
                                          std::span<const int32_t> blocks, int n_positions) {
    (void)descriptor;
    (void)src_blocks;
    (void)blocks;
    (void)n_positions;
    return unimplemented("this backend cannot map a peer's KV pool");
  }
};

// The KV cache's storage (`--kv-cache-dtype`). kAuto: the backend's compute dtype (CPU f32, CUDA
// its activation dtype). kFp8: float8_e4m3fn with one scale per layer for K and one for V (the
// checkpoint's k_scale / v_scale, else 1, as vLLM does without calibration): stored =
// e4m3(k / k_scale), read back as stored · k_scale. Per-tensor scales keep a block's bytes
// self-contained (no scale pages), so the layout moves between workers of the same model as is.
enum class KvCacheDtype { kAuto, kFp8 };
inline Result<KvCacheDtype> parse_kv_cache_dtype(std::string_view s) {
  if (s.empty() || s == "auto") return KvCacheDtype::kAuto;
  if (s == "fp8" || s == "fp8_e4m3") return KvCacheDtype::kFp8;
  return invalid_argument("kv cache dtype '" + std::string(s) + "' is not supported (auto, fp8)",
                          "kv_cache_dtype");
}
// The scale a layer's FP8 K (or V) cache uses: the checkpoint's, else 1.
inline float kv_scale_or_one(float s) {
  return s > 0.0f ? s : 1.0f;
}

// Default KV budget: max_num_seqs full contexts, capped here (but always at least one context).
inline constexpr int64_t kDefaultKvCacheCapBytes = int64_t{2} << 30;

struct CpuBackendOptions {
  int n_threads = 0;                  // 0: all hardware threads
  int max_num_seqs = 8;               // sizes the default KV budget
  int max_context = 0;                // 0: the model's context length
  int block_size = 16;                // positions per KV block
  int64_t kv_cache_memory_bytes = 0;  // 0: the default budget above
  // Ranks of a tensor-parallel group (issue 22): n_threads is split between them, each rank a
  // thread group with its shard of the weights and of every KV block (tp/shard.h); the KV budget
  // counts the bytes of all ranks (a replicated KV head counts once per rank holding it).
  int tensor_parallel_size = 1;
  int num_blocks = 0;  // > 0: exactly this many KV blocks, whatever the budget (tests)
  KvCacheDtype kv_cache_dtype = KvCacheDtype::kAuto;  // f32, or FP8 (a quarter of the bytes)
};

// Bytes of K and V for one position across all layers (f32, or 1 byte per element for FP8),
// summed over the ranks of a tensor-parallel group of `tensor_parallel_size`.
int64_t cpu_kv_bytes_per_token(const model::ModelConfig& config, int tensor_parallel_size = 1,
                               KvCacheDtype dtype = KvCacheDtype::kAuto);

Result<std::unique_ptr<Backend>> make_cpu_backend(const model::Model& model,
                                                  const CpuBackendOptions& options);

}  // namespace turbine::engine
