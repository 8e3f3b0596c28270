// The engine's device-to-device import path (issue 8; CUDA IPC on a GPU): when a transfer names
// a pool the decode backend can map (KvTransferMeta::device_pool), the blocks are copied from
// that pool between steps instead of being fetched as bytes; when the copy is not possible the
// bytes are fetched through the KvTransfer as before. Here a test backend stands for the device:
// its "pool" is another backend in this process, copied through read/write_kv_blocks.
#include <gtest/gtest.h>

#include <atomic>
#include <charconv>

#include "disagg/disagg_engine.h"
#include "disagg/in_process_transfer.h"
#include "disagg_test_util.h"
#include "engine/backend.h"
#include "router/routed_engine.h"

namespace turbine::disagg {
namespace {

using namespace testing;  // NOLINT
using engine::FinishReason;

// A CPU backend whose KV pool peers in this process can "map": the descriptor names this object.
class PoolBackend final : public engine::Backend {
 public:
  explicit PoolBackend(std::unique_ptr<engine::Backend> inner) : inner_(std::move(inner)) {}
  std::string_view name() const override { return "pool-test"; }
  int max_context() const override { return inner_->max_context(); }
  int num_blocks() const override { return inner_->num_blocks(); }
  int block_size() const override { return inner_->block_size(); }
  Status forward(std::span<const engine::SeqChunk> chunks, std::vector<float>& logits) override {
    return inner_->forward(chunks, logits);
  }
  engine::KvLayout kv_layout() const override { return inner_->kv_layout(); }
  Status read_kv_blocks(std::span<const int32_t> blocks, std::string& out) override {
    return inner_->read_kv_blocks(blocks, out);
  }
  Status write_kv_blocks(std::span<const int32_t> blocks, std::string_view bytes,
                         int n_positions) override {
    return inner_->write_kv_blocks(blocks, bytes, n_positions);
  }
  std::string kv_pool_descriptor() const override {
    return "pool-test:" + std::to_string(reinterpret_cast<uintptr_t>(this));
  }
  Status copy_kv_blocks_from_pool(std::string_view descriptor, std::span<const int32_t> src_blocks,
                                  std::span<const int32_t> blocks, int n_positions) override {
    copies_++;
    if (fail_copies_) return Status(StatusCode::kUnavailable, "injected: pool not reachable");
    constexpr std::string_view kPrefix = "pool-test:";
    if (!descriptor.starts_with(kPrefix)) return invalid_argument("not a test pool");
    uintptr_t addr = 0;
    const std::string_view num = descriptor.substr(kPrefix.size());
    std::from_chars(num.data(), num.data() + num.size(), addr);
    auto* source = reinterpret_cast<PoolBackend*>(addr);
    std::string bytes;
    TURBINE_RETURN_IF_ERROR(source->inner_->read_kv_blocks(src_blocks, bytes));
    blocks_copied_ += static_cast<int>(blocks.size());
    return inner_->write_kv_blocks(blocks, bytes, n_positions);
  }

  std::atomic<int> copies_{0};
  std::atomic<int> blocks_copied_{0};
  std::atomic<bool> fail_copies_{false};

 private:
  std::unique_ptr<engine::Backend> inner_;
};

struct Pair {
  std::shared_ptr<InProcessKvTransfer> in_process = std::make_shared<InProcessKvTransfer>();
  std::shared_ptr<FaultyTransfer> transfer = std::make_shared<FaultyTransfer>(in_process);
  PoolBackend* prefill_backend = nullptr;
  PoolBackend* decode_backend = nullptr;
  std::shared_ptr<engine::Engine> prefill, decode;
  std::unique_ptr<DisaggEngine> engine;

  std::shared_ptr<engine::Engine> make(uint64_t instance, std::shared_ptr<engine::KvTransfer> t,
                                       bool device_import, PoolBackend*& raw) {
    engine::CpuBackendOptions bo;
    bo.n_threads = 1;
    bo.max_num_seqs = 4;
    bo.block_size = 16;
    auto cpu = engine::make_cpu_backend(*stories()->model, bo);
    EXPECT_TRUE(cpu.has_value());
    auto backend = std::make_unique<PoolBackend>(std::move(cpu).value());
    raw = backend.get();
    engine::EngineOptions eo;
    eo.max_num_seqs = 4;
    eo.instance_id = instance;
    eo.kv_transfer = std::move(t);
    eo.kv_device_import = device_import;
    return std::make_shared<engine::Engine>(std::move(backend), stories()->model->config().n_vocab,
                                            eo);
  }

  explicit Pair(bool device_import = true) {
    prefill = make(0x11, nullptr, true, prefill_backend);
    in_process->add_source(0x11, prefill);
    decode = make(0x22, transfer, device_import, decode_backend);
    auto prefill_pool = std::make_shared<router::RoutedEngine>(router::RouterOptions{});
    prefill_pool->add_worker({0x11, 16, prefill->stats().kv_total_blocks}, prefill);
    auto decode_pool = std::make_shared<router::RoutedEngine>(router::RouterOptions{});
    decode_pool->add_worker({0x22, 16, decode->stats().kv_total_blocks}, decode);
    DisaggOptions o;
    o.max_local_prefill_length = 0;
    o.max_inflight_prefills = 64;
    engine = std::make_unique<DisaggEngine>(o, prefill_pool, decode_pool, transfer);
  }
  ~Pair() { engine->shutdown(); }

  std::vector<std::vector<int32_t>> run(const std::vector<std::vector<int32_t>>& prompts,
                                        int max_tokens, uint64_t first_id) {
    std::vector<std::future<Collected>> futs;
    uint64_t id = first_id;
    for (const auto& p : prompts) futs.push_back(submit(*engine, id++, p, greedy(max_tokens)));
    std::vector<std::vector<int32_t>> out;
    for (auto& f : futs) {
      Collected c = wait(std::move(f));
      EXPECT_EQ(c.finish, FinishReason::kLength) << c.error.to_string();
      out.push_back(c.tokens);
    }
    return out;
  }
};

// The counters of one transport in an engine's stats (all zero when it never reported).
engine::KvTransportStats transport(const engine::EngineStats& s, const std::string& name) {
  for (const auto& t : s.kv_transports)
    if (t.transport == name) return t;
  return {name};
}

// Every import is a pool copy: no bytes go through the transport, the outputs are aggregated
// serving's, the stats say device, and both sides end with no blocks held.
TEST(DeviceImport, PoolCopiesReplaceByteFetches) {
  REQUIRE_STORIES();
  const auto prompts = prompt_suite();
  const auto expected = aggregated_outputs(prompts, 32);
  Pair p;
  EXPECT_EQ(p.run(prompts, 32, 1), expected);
  const auto s = p.decode->stats();
  EXPECT_EQ(s.kv_imports, prompts.size());
  EXPECT_EQ(s.kv_device_imports, prompts.size());
  EXPECT_EQ(s.kv_import_fallbacks, 0u);
  EXPECT_EQ(p.transfer->fetches(), 0);
  EXPECT_EQ(p.decode_backend->copies_.load(), static_cast<int>(prompts.size()));
  EXPECT_EQ(static_cast<uint64_t>(p.decode_backend->blocks_copied_.load()),
            s.kv_import_fetched_blocks);
  EXPECT_EQ(
      s.kv_import_device_bytes,
      s.kv_import_fetched_blocks * static_cast<uint64_t>(p.decode->kv_layout().bytes_per_block));
  EXPECT_EQ(s.kv_import_device_bytes, s.kv_import_bytes);
  // Per transport: every byte under cuda_ipc, none through the byte transport.
  const auto ipc = transport(s, "cuda_ipc");
  EXPECT_EQ(ipc.fetches, prompts.size());
  EXPECT_EQ(ipc.failures, 0u);
  EXPECT_EQ(ipc.bytes, s.kv_import_device_bytes);
  EXPECT_EQ(transport(s, "in_process").fetches, 0u);
  EXPECT_EQ(p.transfer->releases(), static_cast<int>(prompts.size()));
  EXPECT_TRUE(eventually([&] { return p.prefill->stats().kv_used_blocks == 0; }));
  EXPECT_TRUE(eventually([&] { return p.decode->stats().kv_used_blocks == 0; }));
}

// A pool that cannot be mapped (another host, IPC forbidden): the bytes are fetched instead —
// same outputs, no local re-prefill.
TEST(DeviceImport, UnreachablePoolFetchesBytes) {
  REQUIRE_STORIES();
  const auto prompts = prompt_suite();
  const auto expected = aggregated_outputs(prompts, 24);
  Pair p;
  p.decode_backend->fail_copies_ = true;
  EXPECT_EQ(p.run(prompts, 24, 1), expected);
  const auto s = p.decode->stats();
  EXPECT_EQ(s.kv_imports, prompts.size());
  EXPECT_EQ(s.kv_device_imports, 0u);
  EXPECT_EQ(s.kv_import_device_bytes, 0u);
  EXPECT_EQ(s.kv_import_fallbacks, 0u);
  EXPECT_EQ(p.transfer->fetches(), static_cast<int>(prompts.size()));
  EXPECT_GT(s.kv_import_bytes, 0u);
  // Each refused pool copy counts as a cuda_ipc failure; the bytes came in process instead.
  const auto ipc = transport(s, "cuda_ipc");
  EXPECT_EQ(ipc.fetches, prompts.size());
  EXPECT_EQ(ipc.failures, prompts.size());
  EXPECT_EQ(ipc.bytes, 0u);
  EXPECT_EQ(transport(s, "in_process").bytes, s.kv_import_bytes);
  EXPECT_TRUE(eventually([&] { return p.prefill->stats().kv_used_blocks == 0; }));
}

// kv_device_import off: the engine never asks the backend to copy.
TEST(DeviceImport, OffMeansBytesOnly) {
  REQUIRE_STORIES();
  const auto prompts = prompt_suite();
  Pair p(/*device_import=*/false);
  EXPECT_EQ(p.run(prompts, 8, 1), aggregated_outputs(prompts, 8));
  EXPECT_EQ(p.decode_backend->copies_.load(), 0);
  EXPECT_EQ(p.decode->stats().kv_device_imports, 0u);
  EXPECT_EQ(p.transfer->fetches(), static_cast<int>(prompts.size()));
}

}  // namespace
}  // namespace turbine::disagg
