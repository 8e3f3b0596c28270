// MockEngine: an AsyncEngine that simulates a GPU worker in time, for routing, planning and
// benchmarks with many workers on a CPU (the idea of NVIDIA Dynamo's mocker; facts only).
//
// It runs the real scheduling and KV bookkeeping of engine::Engine -- a kv::BlockPool with prefix
// caching that publishes real KV events, continuous batching within max_num_batched_tokens and
// max_num_seqs, chunked prefill, preemption by recomputation when blocks run out -- but instead
// of a forward pass each step sleeps for the time the timing model gives, divided by `speedup`.
//
// Timing model (one step; defaults roughly a Llama-3-8B in BF16 on one H100):
//   step_ms = base_ms                                   (weights streamed once per step)
//           + per_seq_ms          * sequences in the step
//           + per_kv_token_ms     * KV positions read by the step (context of every sequence)
//           + per_prefill_token_ms * new prompt tokens in the step
//           + attention_ms        * sum over prefill chunks of (chunk tokens * context length)
// base 5 ms = 16 GB of weights at ~3.3 TB/s; per_kv_token 4e-5 ms = 128 KiB of KV per token
// (32 layers x 8 KV heads x 128 x 2 x BF16) at ~3.3 TB/s; per_prefill_token 0.03 ms = 16 GFLOP
// per token at ~550 TFLOP/s; attention 1.3e-6 ms = 4 x 32 layers x 4096 FLOP per token pair.
// So a lone decode step at 4k context takes ~5.2 ms, a 4k-token prefill ~150 ms.
//
// Disaggregated serving (engine/kv_transfer.h), simulated: a prefill-only request runs its prompt
// (prefill time as above), samples the first token, finishes, and keeps its blocks pinned in the
// transfer table (release_transfer, kv_transfer_ttl or shutdown unpin them); its final output
// carries a KvTransferMeta whose layout is {dtype "sim", block_size, bytes_per_block =
// kv_bytes_per_token * block_size}. An import reuses this engine's own prefix cache, then
// "fetches" only the missing blocks: options.kv_transfer->fetch (e.g. disagg::InProcessKvTransfer
// over mock sources) checks that the source still holds them and carries no bytes (a mock source
// answers an empty payload), while the sequence waits -- holding its blocks and a slot, the step
// loop running others -- for missing bytes / kv_transfer_gbps of simulated time. Fetches share
// the engine's one inbound link: they queue behind each other (a NIC per decode GPU). A failed,
// timed-out or refused fetch prefills locally, as engine::Engine does.
//
// Generated tokens are deterministic pseudo-random ids in [0, n_vocab) from (prompt hash,
// position); max_tokens, min_tokens, ignore_eos, stop_token_ids and EOS behave as in the real
// engine. Logprobs are placeholders (0 for the sampled token).
//
// Threads: as engine::Engine: submit/cancel from any thread post to the inbox; the mock's own
// thread owns sequences, the pool and every block table, calls output callbacks and publishes KV
// events.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "engine/async_engine.h"
#include "engine/kv_transfer.h"
#include "kv/block_pool.h"
#include "kv/protocol.h"
#include "kv/transfer_table.h"

namespace turbine::mock {

struct MockTiming {
  double base_ms = 5.0;
  double per_seq_ms = 0.02;
  double per_kv_token_ms = 4.0e-5;
  double per_prefill_token_ms = 0.03;
  double attention_ms = 1.3e-6;

  // `prefill_context_product`: sum over prefill chunks of chunk tokens x (context + chunk / 2).
  double step_ms(int n_seqs, int64_t kv_tokens, int64_t prefill_tokens,
                 double prefill_context_product) const {
    return base_ms + per_seq_ms * n_seqs + per_kv_token_ms * static_cast<double>(kv_tokens) +
           per_prefill_token_ms * static_cast<double>(prefill_tokens) +
           attention_ms * prefill_context_product;
  }
};

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

  Status validate() const;
};

class MockEngine final : public engine::AsyncEngine, public engine::KvTransferSource {
 public:
  explicit MockEngine(MockEngineOptions options);
  ~MockEngine() override;
  MockEngine(const MockEngine&) = delete;
  MockEngine& operator=(const MockEngine&) = delete;

  Status submit(engine::EngineRequest request) override;
  void cancel(uint64_t id) override;
  void stop(uint64_t id) override;
  void shutdown() override;
  engine::EngineStats stats() const override;
  int max_context() const override { return max_context_; }
  int num_slots() const override { return options_.max_num_seqs; }
  int block_size() const override { return options_.block_size; }

  // KvTransferSource: any thread; answered on the mock thread between steps with an empty payload
  // (no bytes are simulated), or NotFound when the transfer is not held.
  void read_transfer(uint64_t transfer_id, int first_block, int n_blocks,
                     engine::KvBytesCallback done) override;
  void release_transfer(uint64_t transfer_id) override;
  engine::KvLayout kv_layout() const override { return kv_layout_; }

  // Simulated milliseconds of all steps so far (independent of speedup).
  double simulated_ms() const { return simulated_ms_.load(); }

 private:
  using Clock = std::chrono::steady_clock;
  struct Fetched {
    uint64_t gen = 0;
    Result<std::string> data;
  };
  struct SourceOp {
    uint64_t transfer_id = 0;
    int first_block = 0;
    int n_blocks = 0;
    engine::KvBytesCallback done;  // empty: release
  };
  // Fetch callbacks reach the engine through this; shutdown() cuts it so late ones are dropped.
  struct Mailbox {
    std::mutex mu;
    MockEngine* engine = nullptr;
  };
  enum class ImportStart { kStarted, kNoBlocks, kLocal };
  struct Sequence;
  struct Planned {
    Sequence* seq;
    int n_tokens;
  };
  void loop();
  std::vector<Planned> schedule();
  bool grow(Sequence& seq, int n_tokens);
  void preempt(std::vector<Planned>& plan, int& budget);
  void free_blocks(Sequence& seq);
  bool step();  // false: nothing could run
  void finish(Sequence& seq, engine::FinishReason reason, Status error = Status::ok());
  int32_t next_token(Sequence& seq) const;
  void publish_stats();
  ImportStart begin_import(Sequence& seq);
  void complete_fetch(uint64_t gen, Result<std::string> data);
  void finish_import(std::unique_ptr<Sequence> seq);
  void fall_back(std::unique_ptr<Sequence> seq, const Status& why);
  void advance(Clock::time_point now);  // imports whose transfer is done; timeouts; TTLs
  void run_source_op(SourceOp& op);
  std::shared_ptr<const engine::KvTransferMeta> pin_transfer(Sequence& seq);
  std::optional<Clock::time_point> next_deadline() const;

  const MockEngineOptions options_;
  const int max_context_;
  const engine::KvLayout kv_layout_;
  kv::BlockPool pool_;

  mutable std::mutex mu_;  // guards the inbox fields below
  std::condition_variable cv_;
  std::deque<engine::EngineRequest> inbox_;
  std::unordered_set<uint64_t> cancels_;
  std::unordered_set<uint64_t> stops_;  // of cancels_, those from stop(): not counted cancelled
  std::deque<Fetched> fetched_;
  std::deque<SourceOp> source_ops_;
  bool stopping_ = false;
  bool idle_ = false;  // the last step found nothing to run: wait for an event before the next
  std::shared_ptr<Mailbox> mailbox_;

  // Mock-thread state.
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;
  std::vector<std::unique_ptr<Sequence>> fetching_;  // admitted imports waiting for their KV
  kv::TransferTable transfers_;                      // prefill-only results, by transfer id
  uint64_t next_fetch_gen_ = 1;
  Clock::time_point next_step_at_{};
  Clock::time_point link_free_at_{};  // the inbound KV link is busy until then

  std::atomic<int> n_running_{0};
  std::atomic<int> n_waiting_{0};
  std::atomic<uint64_t> n_steps_{0};
  std::atomic<uint64_t> n_cancelled_{0};
  std::atomic<uint64_t> n_prompt_tokens_{0};
  std::atomic<uint64_t> n_generated_tokens_{0};
  std::atomic<int> kv_used_blocks_{0};
  std::atomic<uint64_t> prefix_queried_tokens_{0};
  std::atomic<uint64_t> prefix_hit_tokens_{0};
  std::atomic<uint64_t> n_preemptions_{0};
  std::atomic<int> last_batch_size_{0};
  std::atomic<int> last_step_tokens_{0};
  std::atomic<double> last_step_seconds_{0.0};
  std::atomic<double> simulated_ms_{0.0};
  std::atomic<int> n_transfers_pinned_{0};
  std::atomic<int> n_transfer_pinned_blocks_{0};
  std::atomic<uint64_t> n_transfers_expired_{0};
  std::atomic<uint64_t> n_imports_{0};
  std::atomic<uint64_t> n_import_fallbacks_{0};
  std::atomic<uint64_t> n_import_fetched_blocks_{0};
  std::atomic<uint64_t> n_import_reused_blocks_{0};
  std::atomic<uint64_t> n_import_bytes_{0};  // simulated
  std::atomic<double> import_seconds_{0.0};  // simulated transfer time, sum

  std::thread thread_;
};

}  // namespace turbine::mock
