// Engine: an asynchronous token-in/token-out generator owned by one engine thread, over any
// Backend: the CPU and CUDA backends compute; the simulated backend (mock/) sleeps a modelled step
// time, so the mock engine is this engine with the same scheduler, KV bookkeeping and
// disaggregation state machine.
//
// Threads: submit() and cancel() may be called from any thread; they post to the engine
// thread's inbox. The engine thread alone owns the sequences, the backend, the KV block pool and
// every block table. Output callbacks run ON THE ENGINE THREAD and must not block: they hand the
// output to the caller's own executor (the frontend posts it to the connection's strand). KV
// events are published on the engine thread too (kv::KvEventSink must not block).
//
// Scheduling (one step = one Backend::forward) follows the policy of engine/scheduler.h within
// `max_num_batched_tokens` (and, with latency targets, within the time the step-time model
// predicts, EngineOptions::target_itl_ms): running decodes, then running prefill chunks, then
// admissions in FCFS (or TTFT deadline) order, or by priority class first with
// --scheduling-policy priority (prefix-cache hits reused), preempting the newest running sequence
// (priority: the lowest class's latest arrival) by recomputation when KV blocks run out (the client
// sees nothing but latency). After the step, newly full blocks are registered in the prefix cache
// (BlockStored events). Cancelled and finished sequences free their blocks at once (last block
// first, so that the prefix cache evicts leaves before their parents).
//
// Stats: the engine thread keeps a plain EngineStats and publishes a copy under a small mutex
// before it delivers outputs, so a caller that saw an output sees the counters of its step.
//
// Prompt groups (SamplingParams::prompt_group, the n choices of one prompt): the first member to
// arrive runs as usual; later members wait (held, not queued) until its prompt is computed, then
// join the queue's front and start on its prefix-cache blocks, shared read-only; the last
// partial block is recomputed by each (the scheduler never reuses a sequence's last token). If
// the first member leaves before that (cancelled, preempted, failed), the others are released
// and compute the prompt themselves. Groups need prefix caching and a prompt longer than one
// block; KV imports (disaggregation) ignore them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "engine/async_engine.h"
#include "engine/backend.h"
#include "engine/cpu_thread_pool.h"
#include "engine/job_pool.h"
#include "engine/kv_transfer.h"
#include "engine/sampling.h"
#include "engine/scheduler.h"
#include "engine/step_model.h"
#include "kv/block_pool.h"
#include "kv/protocol.h"
#include "kv/transfer_table.h"
#include "kvtier/tier_manager.h"
#include "structured/compiler.h"
#include "structured/matcher.h"

namespace turbine::engine {

struct EngineOptions {
  int max_num_batched_tokens = 2048;  // tokens in one forward step
  int max_waiting = 1024;             // queued requests before submit() refuses (429)
  int max_num_seqs = 8;               // sequences running (holding KV blocks) at once
  bool enable_prefix_caching = true;
  std::vector<int32_t> eos_token_ids;
  std::shared_ptr<kv::KvEventSink> kv_event_sink;  // null: no KV events
  // Disaggregated serving (engine/kv_transfer.h).
  uint64_t instance_id = 0;  // stamped into the KvTransferMeta of prefill-only requests
  std::shared_ptr<KvTransfer> kv_transfer;  // fetches imported KV; null: imports prefill locally
  std::chrono::milliseconds kv_transfer_ttl{60'000};   // pinned transfers never released are freed
  std::chrono::milliseconds kv_fetch_timeout{10'000};  // a slower fetch falls back to local prefill
  // Imports whose KvTransferMeta names a device pool the backend can map (CUDA IPC on one host)
  // copy device to device; off, or when the mapping fails: the bytes go through kv_transfer.
  bool kv_device_import = true;
  // The inbound link's modelled time, for transports that move no bytes (the simulated backend's
  // KV, mock/); null: fetches take the time they take. One per engine.
  std::shared_ptr<KvLink> kv_link;
  // Structured outputs: compiles a request's SamplingParams::constraint against this model's
  // vocabulary (cached by spec, so a spec the frontend compiled with the same compiler, or that
  // came over the wire before, is a lookup). Null: constrained requests are refused (400).
  std::shared_ptr<structured::GrammarCompiler> grammar_compiler;
  // Threads that fill one step's masks, the engine thread included (issue 19: the masks of step t
  // are computed while the device runs step t's forward; with many constrained sequences one
  // thread would outlast it). Each sequence's mask is written by one task, so the result does not
  // depend on the count. 1: the engine thread alone; 0: auto, min(4, cores / 2). A step with
  // fewer than kMinMaskPoolSeqs masked rows fills them on the engine thread.
  int mask_threads = 0;
  static constexpr size_t kMinMaskPoolSeqs = 4;
  // A constraint not yet in grammar_compiler's cache (a cold 128k-vocabulary schema compiles in
  // ~100 ms) compiles off the thread that called submit(), on compile_threads threads: on a worker
  // that thread is a request-plane I/O thread shared by the connection's other requests. submit()
  // accepts such a request at once; it queues once compiled, and a bad constraint ends it with a
  // kError output carrying the 400-class status (what a refused submit() becomes over the wire
  // too). 0: compile inside submit(), on the caller's thread.
  int compile_threads = 1;
  // Runs one compile job: any thread, any time, even after the engine is gone (the job then ends
  // its request with kCancelled). Null: the engine's own pool of compile_threads threads. Tests
  // hold jobs back with it.
  std::function<void(std::function<void()>)> compile_executor;
  // Latency targets (issue 29), in the backend's time (simulated time on the simulated backend);
  // 0: off. target_itl_ms: a step that decodes carries only the prefill that the learned
  // step-time model (engine/step_model.h) says fits beside its decodes within the target, and at
  // least min_prefill_share of the target's time, within max_num_batched_tokens either way.
  // target_ttft_ms: the queue is ordered by TTFT deadline (arrival + target); a request that can
  // no longer make it goes behind those that can, but no further than arrival + 4 x the target
  // (no starvation). Sequences preempted after their first token stay first. With both targets,
  // a request that has waited half its TTFT target and can still make it lets a step run longer
  // than the ITL target, as far as every decoding sequence has banked time for it: up to the
  // shortest step after which one of them would average more than target_itl_ms per token since
  // its first, and at most kMaxItlBoost x target_itl_ms.
  double target_itl_ms = 0;
  double target_ttft_ms = 0;
  static constexpr double kMaxItlBoost = 3.0;
  // Queue order and preemption victims (engine/scheduler.h SchedulingPolicy). kFcfs refuses a
  // request whose SamplingParams::priority is not 0 (kInvalidArgument naming `priority`, as vLLM
  // does without --scheduling-policy priority). kPriority with target_ttft_ms: classes first,
  // the deadline order within each class (the starvation bound too); the ITL boost of a request
  // at risk is the same for every class.
  SchedulingPolicy scheduling_policy = SchedulingPolicy::kFcfs;
  double min_prefill_share = 0.1;
  StepModelOptions step_model;  // its prior is replaced by Backend::step_time_prior()
  // KV cache tiers (issue 24, kvtier/): blocks evicted from the device pool are offered to it
  // (their bytes read with Backend::read_kv_blocks), and admission onboards the leading blocks it
  // holds (Backend::write_kv_blocks) while the sequence waits in the loading state. Its block
  // size in bytes must be the backend's kv_layout().bytes_per_block. Null: no tiers. One per
  // engine.
  std::shared_ptr<kvtier::TierManager> kv_tiers;
  // A tier load that has not finished after this long is abandoned: the sequence recomputes.
  std::chrono::milliseconds kv_tier_load_timeout{10'000};
  // Simulated backends (mock/): blocks move no bytes, so an onboarded load counts as arrived when
  // these modelled links (host tier, disk tier) say so. Null: when the bytes are written.
  std::shared_ptr<KvLink> kv_tier_host_link;
  std::shared_ptr<KvLink> kv_tier_disk_link;

  Status validate() const;
};

// Disaggregated serving (engine/kv_transfer.h): a prefill-only request finishes after its first
// token with its prompt's blocks pinned in the transfer table (read_transfer serves them on the
// engine thread; release_transfer, the TTL or shutdown unpins them). A request with an import is
// admitted like any other (its own prefix-cache hits count), then waits in `fetching_` (holding
// its blocks and a sequence slot, not running) while options.kv_transfer fetches the blocks it
// lacks; the result is posted back to the engine thread, written into the backend, and the
// sequence joins the running batch at the first token. When the transfer names a device pool
// the backend can map (KvTransferMeta::device_pool, CUDA IPC), the copy is device to device,
// made on the engine thread between steps; if the mapping fails the bytes are fetched instead.
// With options.kv_link, fetched blocks count as arrived only when the modelled link says so (the
// sequence keeps waiting meanwhile; the fetch timeout covers the source's answer only). Failure,
// a timeout, a bad layout: its blocks are freed and it goes back to the front of the queue to
// prefill locally.
// KV tiers (options.kv_tiers) use the same waiting room: a sequence whose leading blocks are
// held in the host or disk tier takes its blocks and waits in `fetching_` ("loading") while the
// TierManager's worker reads them back; the engine loop takes finished loads, writes the bytes
// into the backend, registers the blocks in the prefix cache and lets the sequence run from
// there. Blocks a load could not return intact (gone, corrupt, I/O error, timeout) are
// recomputed. Other sequences keep running meanwhile.
//
// Not final: mock::MockEngine is an Engine over the simulated backend that adds an accessor.
class Engine : public AsyncEngine, public KvTransferSource {
 public:
  Engine(std::unique_ptr<Backend> backend, int32_t n_vocab, EngineOptions options);
  ~Engine() override;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Checks the request (prompt fits the context, parameters valid) and queues it. On success the
  // callback will be called at least once, the last time with finish != kNone. A constrained
  // request's grammar comes from options.grammar_compiler (a cache hit when the frontend compiled
  // the spec already) and its matcher replays the constraint_replay tokens; a bad constraint is
  // kInvalidArgument, returned here when the spec was cached, else the request's final kError
  // output once the compile (off this thread: options.compile_threads) has failed.
  Status submit(EngineRequest request) override;
  // Stops a request; its callback gets a final output with FinishReason::kCancelled (unless it
  // already finished). Unknown ids are ignored.
  void cancel(uint64_t id) override;
  void stop(uint64_t id) override;
  // Finishes the engine thread; requests still running are cancelled.
  void shutdown() override;

  EngineStats stats() const override;
  int max_context() const override { return max_context_; }
  int num_slots() const override { return options_.max_num_seqs; }  // sequences decoded together
  int block_size() const override { return block_size_; }

  // KvTransferSource: any thread; the work is posted to the engine thread.
  void read_transfer(uint64_t transfer_id, int first_block, int n_blocks,
                     KvBytesCallback done) override;
  void release_transfer(uint64_t transfer_id) override;
  KvLayout kv_layout() const override { return kv_layout_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Fetched {
    uint64_t gen = 0;
    Result<std::string> data;
    bool direct = false;  // copy from the source's device pool instead (data unused)
  };
  struct SourceOp {
    uint64_t transfer_id = 0;
    int first_block = 0;
    int n_blocks = 0;
    KvBytesCallback done;  // empty: release
  };
  // Fetch callbacks reach the engine through this; shutdown() cuts it so late ones are dropped.
  struct Mailbox {
    std::mutex mu;
    Engine* engine = nullptr;
  };
  enum class ImportStart { kStarted, kNoBlocks, kLocal };
  struct Sequence;
  struct Planned {
    Sequence* seq;
    int n_tokens;
  };
  class SchedulerView;
  // The matcher of a constrained request, with its replayed tokens accepted.
  Result<std::unique_ptr<structured::Matcher>> make_matcher(const EngineRequest& request);
  // Structured outputs: the allowed-token mask of the sequence's next token into s.mask (n_vocab
  // bits; stop ids only where the output may end); false when nothing is allowed.
  bool fill_mask(Sequence& s) const;
  // A cold constraint's compile job (options.compile_threads): compiles, then queues the request
  // or ends it (a bad constraint, a cancel while compiling, shutdown).
  void compile_async(EngineRequest request, double at_ms);
  void compiled(EngineRequest request, double at_ms);
  // fill_mask() for every sequence, on up to options_.mask_threads threads (the engine thread
  // included); returns when all are filled. Engine thread (or the backend's thread that calls
  // RowSampling::fill_mask while the engine thread waits in forward_sample).
  void fill_masks(std::span<Sequence* const> seqs);
  void loop();
  // Chooses this step's work (engine/scheduler.h) and takes its KV blocks; empty when there is
  // nothing to run.
  std::vector<Planned> schedule();
  // With a TTFT target or the priority policy: orders waiting_ by (priority class,) deadline or
  // arrival (engine_step.cpp). Times: Backend::clock_ms().
  void order_queue(double now_ms);
  // The predicted time this step may take under the ITL target (engine_step.cpp).
  double step_time_limit(double now_ms) const;
  bool grow(Sequence& seq, int n_tokens);
  void free_blocks(Sequence& seq);
  bool step();
  // Runs the step on the backend; `sampled` gets one token per chunk that wants logits.
  Status forward(const std::vector<Planned>& plan, std::span<const SeqChunk> chunks,
                 std::vector<SampledToken>& sampled);
  // forward() for a step with SeqChunk::all_logits chunks: scores their prompt positions into
  // Sequence::prompt_lp and samples every row on the host.
  Status forward_all_logits(const std::vector<Planned>& plan, std::span<const SeqChunk> chunks,
                            std::vector<SampledToken>& sampled);
  bool device_samplable(const Sequence& seq) const;
  // Queues the sequence's final output (delivered by flush()).
  void finish(Sequence& seq, FinishReason reason, Status error = Status::ok());
  // Publishes the stats, then delivers the queued outputs and frees the retired sequences.
  void flush();
  void publish_stats();
  ImportStart begin_import(Sequence& seq);
  void start_fetch(Sequence& seq);
  void complete_fetch(Fetched fetched);
  // Copies the sequence's missing blocks from the source's device pool; false: not possible.
  bool copy_from_device_pool(Sequence& seq);
  void finish_import(std::unique_ptr<Sequence> seq, bool device);
  void fall_back(std::unique_ptr<Sequence> seq, const Status& why);
  void run_source_op(SourceOp& op);
  // KV tiers (engine_tiers.cpp): after the device prefix match, starts a load of the leading
  // blocks the tiers hold (within max_blocks of the sequence); false when there is none.
  bool begin_tier_load(Sequence& seq, size_t max_blocks);
  void complete_tier_load(kvtier::TierLoad load);
  // The load's first n_ok blocks are in: the sequence runs from after them.
  void finish_tier_load(std::unique_ptr<Sequence> seq, int n_ok);
  // A load that timed out: its blocks are freed and the sequence recomputes from the queue's front.
  void tier_load_failed(std::unique_ptr<Sequence> seq, const Status& why);
  // Copies to the tiers the blocks the pool evicted in this schedule() and, with
  // --kv-offload-all-completed, the blocks completed since the last step (before the step writes);
  // blocks a tier holds already are skipped.
  void offload_blocks();
  // After the tier load of a sequence with a KV import: fetches the blocks still missing.
  void continue_import(std::unique_ptr<Sequence> seq);
  // Publishes the tiers' stored/removed blocks as KV events (kv/protocol.h storage_tier).
  void publish_tier_events();
  void add_tier_stats(EngineStats& s) const;
  std::shared_ptr<const KvTransferMeta> pin_transfer(Sequence& seq);
  void expire(Clock::time_point now);
  std::optional<Clock::time_point> next_deadline() const;
  // Prompt groups: a new sequence leads its group or is held until the leader's prompt is in the
  // prefix cache; release_group() queues the held members of `leader`'s group.
  void admit(std::unique_ptr<Sequence> seq);
  void release_group(Sequence& leader);

  std::unique_ptr<Backend> backend_;
  const int32_t n_vocab_;
  const EngineOptions options_;
  const int block_size_;
  const int max_context_;
  // Declared before the sequences: block refs must be released before the pool goes away.
  kv::BlockPool pool_;

  // Inbox, guarded by mu_: written by any thread, drained by the engine thread.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  struct Inbound {
    EngineRequest req;
    std::unique_ptr<structured::Matcher> matcher;  // constrained requests only
    double at_ms = 0;  // Backend::clock_ms() when submit() queued it: its TTFT clock starts here
  };
  std::deque<Inbound> inbox_;
  // Requests whose constraint is compiling (compile_async): id -> 0, or the cancel that came
  // meanwhile (1 cancel, 2 stop), applied when the compile ends.
  std::unordered_map<uint64_t, int> compiling_;
  std::unordered_set<uint64_t> cancels_;
  std::unordered_set<uint64_t> stops_;  // of cancels_, those from stop(): not counted cancelled
  std::deque<Fetched> fetched_;
  std::deque<SourceOp> source_ops_;
  bool tier_ready_ = false;  // the tiers finished a load (the TierManager's notify sets it)
  bool stopping_ = false;
  bool idle_ = false;  // the last step found nothing to run: wait for an event before the next
  const KvLayout kv_layout_;
  const std::string kv_pool_;  // backend_->kv_pool_descriptor(), stamped into every transfer
  std::shared_ptr<Mailbox> mailbox_;

  // Engine-thread state.
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::mt19937_64 seed_rng_{std::random_device{}()};  // device-sampling seeds of unseeded requests
  std::vector<std::unique_ptr<Sequence>> running_;    // in admission order, oldest first
  std::vector<std::unique_ptr<Sequence>> fetching_;   // admitted, waiting for imported KV
  std::vector<std::unique_ptr<Sequence>> held_;       // prompt-group members waiting for a leader
  std::unordered_map<uint64_t, Sequence*> group_leaders_;  // group -> leader computing its prompt
  kv::TransferTable transfers_;                            // prefill-only results, by transfer id
  uint64_t next_fetch_gen_ = 1;
  // Outputs of this iteration, delivered by flush() after the stats are published; finished
  // sequences wait in retired_ until then.
  std::vector<std::pair<Sequence*, EngineOutput>> outbox_;
  std::vector<std::unique_ptr<Sequence>> retired_;
  EngineStats stats_;         // counters and gauges, engine thread; published_ is the readers' copy
  StepTimeModel step_model_;  // learned from every step's measured (or modelled) time
  std::shared_ptr<kvtier::TierManager> tiers_;  // options_.kv_tiers when the layout fits
  uint64_t next_tier_load_ = 1;
  uint64_t device_import_failures_ = 0;  // fetched through kv_transfer instead
  bool device_import_warned_ = false;
  // Fills a step's structured-output masks (fill_masks); created at the first constrained step.
  std::unique_ptr<CpuThreadPool> mask_pool_;
  // Runs the cold compiles without options_.compile_executor; created at the first one.
  std::mutex compile_pool_mu_;  // guards compile_pool_
  std::unique_ptr<JobPool> compile_pool_;

  mutable std::mutex stats_mu_;  // guards published_ (never held with mu_ taken inside it)
  EngineStats published_;

  std::thread thread_;
};

}  // namespace turbine::engine
