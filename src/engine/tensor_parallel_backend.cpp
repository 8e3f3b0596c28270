#include "engine/tensor_parallel_backend.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tp/shard.h"

namespace turbine::engine {
namespace {

// N threads, thread r runs every job's fn(r); run() returns when all have.
class RankThreads {
 public:
  RankThreads(int n, std::function<void(int)> init) : results_(static_cast<size_t>(n)) {
    for (int r = 0; r < n; ++r) {
      threads_.emplace_back([this, r, init] {
        if (init) init(r);
        loop(r);
      });
    }
  }
  ~RankThreads() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  RankThreads(const RankThreads&) = delete;
  RankThreads& operator=(const RankThreads&) = delete;

  int size() const { return static_cast<int>(threads_.size()); }

  // Runs fn(r) on every rank thread; `on_error` runs on a rank thread right after its fn failed.
  // Returns the first failing rank's status (lowest rank), or ok.
  Status run(const std::function<Status(int)>& fn, const std::function<void()>& on_error) {
    std::unique_lock lock(mu_);
    job_ = &fn;
    on_error_ = &on_error;
    pending_ = size();
    ++generation_;
    work_cv_.notify_all();
    done_cv_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
    on_error_ = nullptr;
    for (Status& s : results_) {
      if (!s.is_ok()) return s;
    }
    return Status::ok();
  }

 private:
  void loop(int r) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<Status(int)>* job;
      const std::function<void()>* on_error;
      {
        std::unique_lock lock(mu_);
        work_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        job = job_;
        on_error = on_error_;
      }
      Status s = (*job)(r);
      if (!s.is_ok() && *on_error) (*on_error)();
      {
        std::lock_guard lock(mu_);
        results_[static_cast<size_t>(r)] = std::move(s);
        if (--pending_ == 0) done_cv_.notify_one();
      }
    }
  }

  std::mutex mu_;  // guards everything below but threads_
  std::condition_variable work_cv_, done_cv_;
  const std::function<Status(int)>* job_ = nullptr;
  const std::function<void()>* on_error_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::vector<Status> results_;
  std::vector<std::thread> threads_;  // last: joined before the rest goes
};

size_t dtype_bytes(const std::string& dtype) {
  if (dtype == "f32") return 4;
  if (dtype == "bf16" || dtype == "f16") return 2;
  return 0;
}

class TensorParallelBackend final : public Backend {
 public:
  TensorParallelBackend(const model::ModelConfig& config, std::unique_ptr<RankThreads> threads,
                        std::vector<std::unique_ptr<Backend>> ranks, TpGroupHooks hooks)
      : config_(config),
        threads_(std::move(threads)),
        ranks_(std::move(ranks)),
        hooks_(std::move(hooks)),
        scratch_logits_(ranks_.size()),
        scratch_tokens_(ranks_.size()),
        kv_bytes_(ranks_.size()) {
    const int size = static_cast<int>(ranks_.size());
    for (int r = 0; r < size; ++r) {
      auto plan = tp::make_shard_plan(config_, r, size);
      kv_head0_.push_back(plan.has_value() ? plan->kv_head0 : 0);
    }
    name_ = std::string(ranks_[0]->name()) + "-tp" + std::to_string(size);
    // Ranks size their KV pools from their own memory: the group uses the smallest.
    num_blocks_ = ranks_[0]->num_blocks();
    for (const auto& b : ranks_) num_blocks_ = std::min(num_blocks_, b->num_blocks());
  }

  ~TensorParallelBackend() override {
    // Each rank's backend goes on its own thread (device state is per thread).
    (void)run([this](int r) {
      ranks_[static_cast<size_t>(r)].reset();
      return Status::ok();
    });
  }

  std::string_view name() const override { return name_; }
  int max_context() const override { return ranks_[0]->max_context(); }
  int num_blocks() const override { return num_blocks_; }
  int block_size() const override { return ranks_[0]->block_size(); }

  bool supports_all_logits() const override { return ranks_[0]->supports_all_logits(); }
  Status forward(std::span<const SeqChunk> chunks, std::vector<float>& logits) override {
    return run([&](int r) {
      return ranks_[static_cast<size_t>(r)]->forward(
          chunks, r == 0 ? logits : scratch_logits_[static_cast<size_t>(r)]);
    });
  }

  Status forward_hidden(std::span<const SeqChunk> chunks, std::vector<float>& hidden) override {
    return run([&](int r) {
      return ranks_[static_cast<size_t>(r)]->forward_hidden(
          chunks, r == 0 ? hidden : scratch_logits_[static_cast<size_t>(r)]);
    });
  }

  bool supports_sampling() const override { return ranks_[0]->supports_sampling(); }
  Status forward_sample(std::span<const SeqChunk> chunks, std::span<const RowSampling> rows,
                        std::vector<int32_t>& tokens, std::vector<float>& logits) override {
    return run([&](int r) {
      const auto ur = static_cast<size_t>(r);
      return ranks_[ur]->forward_sample(chunks, rows, r == 0 ? tokens : scratch_tokens_[ur],
                                        r == 0 ? logits : scratch_logits_[ur]);
    });
  }

  KvLayout kv_layout() const override {
    KvLayout l = ranks_[0]->kv_layout();
    const size_t eb = dtype_bytes(l.dtype);
    if (!l.exportable() || eb == 0) return {};
    l.n_kv_heads = config_.n_kv_heads;
    l.bytes_per_block =
        static_cast<int64_t>(eb) * l.block_size * l.n_kv_heads * l.head_dim * 2 * l.n_layers;
    return l;
  }

  Status read_kv_blocks(std::span<const int32_t> blocks, std::string& out) override {
    if (!kv_layout().exportable()) return unimplemented("this backend cannot export KV blocks");
    for (auto& b : kv_bytes_) b.clear();
    TURBINE_RETURN_IF_ERROR(run([&](int r) {
      return ranks_[static_cast<size_t>(r)]->read_kv_blocks(blocks,
                                                            kv_bytes_[static_cast<size_t>(r)]);
    }));
    const size_t at = out.size();
    out.resize(at + blocks.size() * static_cast<size_t>(kv_layout().bytes_per_block));
    convert(blocks.size(), out.data() + at, nullptr);
    return Status::ok();
  }

  Status write_kv_blocks(std::span<const int32_t> blocks, std::string_view bytes,
                         int n_positions) override {
    const KvLayout l = kv_layout();
    if (!l.exportable()) return unimplemented("this backend cannot import KV blocks");
    if (bytes.size() != blocks.size() * static_cast<size_t>(l.bytes_per_block)) {
      return invalid_argument("write_kv_blocks: " + std::to_string(bytes.size()) + " bytes for " +
                              std::to_string(blocks.size()) + " blocks of " +
                              std::to_string(l.bytes_per_block));
    }
    for (size_t r = 0; r < ranks_.size(); ++r)
      kv_bytes_[r].resize(blocks.size() *
                          static_cast<size_t>(ranks_[r]->kv_layout().bytes_per_block));
    convert(blocks.size(), nullptr, bytes.data());
    return run([&](int r) {
      return ranks_[static_cast<size_t>(r)]->write_kv_blocks(
          blocks, kv_bytes_[static_cast<size_t>(r)], n_positions);
    });
  }

 private:
  Status run(const std::function<Status(int)>& fn) {
    static const std::function<void()> kNoHook;
    Status s = threads_->run(fn, hooks_.abort ? hooks_.abort : kNoHook);
    if (!s.is_ok() && hooks_.reset) hooks_.reset();
    return s;
  }

  // Between the whole-model layout (n_blocks blocks) and the ranks' slices in kv_bytes_: per
  // block, per layer, K then V, each [slot][kv head][head_dim]. Either gathers each head from its
  // owner into `to_whole`, or scatters each head of `from_whole` to every rank holding it.
  void convert(size_t n_blocks, char* to_whole, const char* from_whole) {
    const KvLayout rl = ranks_[0]->kv_layout();
    const size_t eb = dtype_bytes(rl.dtype), hd = static_cast<size_t>(rl.head_dim);
    const size_t head_bytes = eb * hd, bs = static_cast<size_t>(rl.block_size);
    const size_t n_kv = static_cast<size_t>(config_.n_kv_heads);
    const size_t planes = n_blocks * static_cast<size_t>(rl.n_layers) * 2;  // (block, layer, K|V)
    const size_t whole_plane = bs * n_kv * head_bytes;
    for (size_t r = 0; r < ranks_.size(); ++r) {
      const size_t local =
          static_cast<size_t>(r == 0 ? rl.n_kv_heads : ranks_[r]->kv_layout().n_kv_heads);
      const size_t rank_plane = bs * local * head_bytes;
      const size_t h0 = static_cast<size_t>(kv_head0_[r]);
      // A replicated head is exported from the first rank holding it.
      const bool first_holder =
          tp::kv_head_owner(config_, static_cast<int>(ranks_.size()), static_cast<int>(h0)).rank ==
          static_cast<int>(r);
      if (from_whole == nullptr && !first_holder) continue;
      char* rank_data = kv_bytes_[r].data();
      for (size_t p = 0; p < planes; ++p) {
        for (size_t s = 0; s < bs; ++s) {
          const size_t w = p * whole_plane + (s * n_kv + h0) * head_bytes;
          char* rd = rank_data + p * rank_plane + s * local * head_bytes;
          const size_t n = local * head_bytes;
          if (from_whole != nullptr) {
            std::memcpy(rd, from_whole + w, n);
          } else if (first_holder) {
            std::memcpy(to_whole + w, rd, n);
          }
        }
      }
    }
  }

  const model::ModelConfig config_;
  std::unique_ptr<RankThreads> threads_;
  std::vector<std::unique_ptr<Backend>> ranks_;
  const TpGroupHooks hooks_;
  std::string name_;
  int num_blocks_ = 0;
  std::vector<int> kv_head0_;  // per rank: its first KV head
  // Per rank outputs nobody reads (ranks > 0) and KV slices; engine thread between calls.
  std::vector<std::vector<float>> scratch_logits_;
  std::vector<std::vector<int32_t>> scratch_tokens_;
  std::vector<std::string> kv_bytes_;
};

}  // namespace

Result<std::unique_ptr<Backend>> make_tensor_parallel_backend(
    const model::ModelConfig& config, int size, RankFactory factory, TpGroupHooks hooks,
    std::function<void(int rank)> thread_init) {
  TURBINE_RETURN_IF_ERROR(tp::check_tensor_parallel(config, size));
  auto threads = std::make_unique<RankThreads>(size, std::move(thread_init));
  std::vector<std::unique_ptr<Backend>> ranks(static_cast<size_t>(size));
  static const std::function<void()> kNoHook;
  Status built = threads->run(
      [&](int r) -> Status {
        auto b = factory(r);
        if (!b.has_value()) return b.status();
        ranks[static_cast<size_t>(r)] = std::move(*b);
        return Status::ok();
      },
      kNoHook);
  auto destroy = [&] {
    (void)threads->run(
        [&](int r) {
          ranks[static_cast<size_t>(r)].reset();
          return Status::ok();
        },
        kNoHook);
  };
  if (!built.is_ok()) {
    destroy();
    return built;
  }
  const Backend& b0 = *ranks[0];
  const KvLayout l0 = b0.kv_layout();
  for (const auto& b : ranks) {
    const KvLayout l = b->kv_layout();
    if (b->block_size() != b0.block_size() || b->max_context() != b0.max_context() ||
        l.dtype != l0.dtype || l.n_layers != l0.n_layers || l.head_dim != l0.head_dim) {
      destroy();
      return internal_error("tensor-parallel ranks disagree on their KV cache shape");
    }
  }
  return std::unique_ptr<Backend>(std::make_unique<TensorParallelBackend>(
      config, std::move(threads), std::move(ranks), std::move(hooks)));
}

}  // namespace turbine::engine
