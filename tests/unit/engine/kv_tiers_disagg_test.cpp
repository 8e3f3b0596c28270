// KV tiers on a disaggregated decode worker (issue 24): a decode request that imports a prefill
// worker's KV first onboards the leading blocks its own host tier holds and fetches only the rest.
// In process on the CPU backend (stories260K): a prefill engine pins the prompt's blocks, a decode
// engine with a small device pool and a host tier imports them through a KvTransfer that reads the
// prefill engine directly. Greedy outputs equal a plain engine's; the counters show the blocks
// onboarded from the decode worker's tier and fewer blocks fetched; a corrupt tier block is
// fetched instead (never used).
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <future>
#include <random>

#include "../model/model_test_util.h"
#include "engine/engine.h"
#include "kv/block_hash.h"
#include "kvtier/tier_manager.h"
#include "model/model.h"

namespace turbine::engine {
namespace {

constexpr int kBlock = 16;
constexpr int kMaxTokens = 8;

// A 104-token prompt (6 full blocks and a partial one) per seed.
std::vector<int32_t> prompt(uint32_t seed, int32_t n_vocab) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(3, n_vocab - 1);
  std::vector<int32_t> v(104);
  for (auto& t : v) t = tok(rng);
  return v;
}

// Reads the prefill engine's pinned blocks directly (what InProcessKvTransfer does, without the
// disagg module); counts the blocks fetched.
class DirectTransfer final : public KvTransfer {
 public:
  explicit DirectTransfer(std::shared_ptr<Engine> source) : source_(std::move(source)) {}
  void fetch(const KvTransferMeta& meta, int first_block, int n_blocks,
             KvBytesCallback done) override {
    fetched_blocks += n_blocks;
    source_->read_transfer(meta.transfer_id, first_block, n_blocks, std::move(done));
  }
  void release(const KvTransferMeta& meta) override { source_->release_transfer(meta.transfer_id); }
  std::string_view name() const override { return "direct"; }
  std::atomic<int> fetched_blocks{0};

 private:
  std::shared_ptr<Engine> source_;
};

struct Answer {
  std::vector<int32_t> tokens;
  std::shared_ptr<const KvTransferMeta> kv_transfer;
};

Answer run(Engine& e, uint64_t id, std::vector<int32_t> p, int max_tokens, KvDisagg disagg = {}) {
  auto done = std::make_shared<std::promise<Answer>>();
  auto acc = std::make_shared<Answer>();
  EngineRequest req;
  req.id = id;
  req.prompt = std::move(p);
  req.params.temperature = 0.0f;
  req.params.max_tokens = max_tokens;
  req.params.ignore_eos = true;
  req.disagg = std::move(disagg);
  req.on_output = [done, acc](EngineOutput&& out) {
    for (const auto& t : out.tokens) acc->tokens.push_back(t.token);
    if (out.finish == FinishReason::kNone) return;
    acc->kv_transfer = out.kv_transfer;
    done->set_value(*acc);
  };
  auto fut = done->get_future();
  const Status st = e.submit(std::move(req));
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  if (!st.is_ok()) return {};
  if (fut.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    ADD_FAILURE() << "request " << id << " did not finish";
    return {};
  }
  return fut.get();
}

class KvTiersDisagg : public ::testing::Test {
 protected:
  void SetUp() override {
    TURBINE_REQUIRE_ASSET(turbine::testing::stories_gguf());
    auto loaded = model::load_model(turbine::testing::stories_gguf());
    ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
    model_ = std::move(loaded).value();
    const int32_t nv = model_->config().n_vocab;
    x_ = prompt(11, nv);
    auto plain = make(256, nullptr, nullptr, 0);
    expected_ = run(*plain, 1, x_, kMaxTokens).tokens;
    plain->shutdown();
    ASSERT_EQ(expected_.size(), static_cast<size_t>(kMaxTokens));
  }

  std::shared_ptr<Engine> make(int num_blocks, std::shared_ptr<kvtier::TierManager> tiers,
                               std::shared_ptr<KvTransfer> transfer, uint64_t instance_id) {
    CpuBackendOptions bo;
    bo.n_threads = 1;
    bo.max_num_seqs = 2;
    bo.block_size = kBlock;
    bo.num_blocks = num_blocks;
    auto backend = make_cpu_backend(*model_, bo);
    EXPECT_TRUE(backend.has_value()) << backend.status().to_string();
    if (!backend.has_value()) return nullptr;
    EngineOptions eo;
    eo.max_num_seqs = 2;
    eo.instance_id = instance_id;
    eo.kv_transfer = std::move(transfer);
    eo.kv_tiers = std::move(tiers);
    return std::make_shared<Engine>(std::move(backend).value(), model_->config().n_vocab, eo);
  }

  std::shared_ptr<kvtier::TierManager> host_tier() {
    kvtier::TierOptions o;
    o.host_bytes = 64 * cpu_kv_bytes_per_token(model_->config()) * kBlock;
    auto t = kvtier::TierManager::create(o, cpu_kv_bytes_per_token(model_->config()) * kBlock);
    EXPECT_TRUE(t.has_value()) << t.status().to_string();
    return t.has_value() ? std::shared_ptr<kvtier::TierManager>(std::move(*t)) : nullptr;
  }

  struct Outcome {
    std::vector<int32_t> tokens;  // the prefill's first token, then the decode worker's
    EngineStats decode;
    int fetched = 0;  // blocks the transport fetched
  };

  // The decode worker (a 10-block pool) has served X before, then two other prompts that pushed
  // X's blocks out of its device pool (into its tier, if it has one). Then X comes disaggregated:
  // prefill-only on the prefill worker, decode with the import here. `before_import` runs just
  // before the decode request (the decode worker's tiers are drained by then).
  Outcome disaggregated(std::shared_ptr<kvtier::TierManager> tiers,
                        const std::function<void()>& before_import = {}) {
    auto prefill = make(256, nullptr, nullptr, 0x11);
    auto transfer = std::make_shared<DirectTransfer>(prefill);
    auto decode = make(10, tiers, transfer, 0x22);
    Outcome o;
    if (!prefill || !decode) return o;
    const int32_t nv = model_->config().n_vocab;
    EXPECT_EQ(run(*decode, 1, x_, kMaxTokens).tokens, expected_);
    run(*decode, 2, prompt(12, nv), kMaxTokens);
    run(*decode, 3, prompt(13, nv), kMaxTokens);
    if (tiers) tiers->drain();
    if (before_import) before_import();
    KvDisagg p;
    p.prefill_only = true;
    Answer first = run(*prefill, 4, x_, kMaxTokens, p);
    EXPECT_EQ(first.tokens.size(), 1u);
    EXPECT_TRUE(first.kv_transfer);
    if (first.tokens.size() != 1 || !first.kv_transfer) return o;
    KvDisagg d;
    d.import = first.kv_transfer;
    std::vector<int32_t> continued = x_;
    continued.push_back(first.tokens[0]);
    o.tokens = first.tokens;
    for (int32_t t : run(*decode, 5, continued, kMaxTokens - 1, d).tokens) o.tokens.push_back(t);
    o.decode = decode->stats();
    o.fetched = transfer->fetched_blocks.load();
    decode->shutdown();
    prefill->shutdown();
    return o;
  }

  std::unique_ptr<model::Model> model_;
  std::vector<int32_t> x_;
  std::vector<int32_t> expected_;
};

constexpr uint64_t kImportBlocks = 7;  // ceil(104 / 16)

TEST_F(KvTiersDisagg, DecodeWorkerOnboardsFromItsTierAndFetchesTheRest) {
  const Outcome without = disaggregated(nullptr);
  EXPECT_EQ(without.tokens, expected_);
  EXPECT_EQ(without.decode.kv_imports, 1u);
  EXPECT_EQ(without.decode.kv_import_tier_blocks, 0u);
  EXPECT_EQ(without.decode.kv_import_fetched_blocks + without.decode.kv_import_reused_blocks,
            kImportBlocks);

  auto tiers = host_tier();
  ASSERT_TRUE(tiers);
  const Outcome with = disaggregated(tiers);
  EXPECT_EQ(with.tokens, expected_);
  const EngineStats& s = with.decode;
  EXPECT_EQ(s.kv_imports, 1u);
  EXPECT_EQ(s.kv_import_fallbacks, 0u);
  EXPECT_GT(s.kv_import_tier_blocks, 0u);
  EXPECT_GE(s.kv_tier_host_onboarded_blocks, s.kv_import_tier_blocks);
  EXPECT_EQ(s.kv_import_fetched_blocks + s.kv_import_reused_blocks, kImportBlocks);
  EXPECT_GE(s.kv_import_reused_blocks, s.kv_import_tier_blocks);
  EXPECT_LT(s.kv_import_fetched_blocks, without.decode.kv_import_fetched_blocks);
  EXPECT_EQ(with.fetched, static_cast<int>(s.kv_import_fetched_blocks));
  EXPECT_LT(with.fetched, without.fetched);
}

TEST_F(KvTiersDisagg, CorruptTierBlockIsFetchedInstead) {
  auto tiers = host_tier();
  ASSERT_TRUE(tiers);
  const auto hashes = kv::block_hashes(x_, kBlock).sequence;
  int corrupted = -1;
  const Outcome o = disaggregated(tiers, [&] {
    // The first of X's blocks the tier holds: the load stops there, the import fetches from it.
    for (size_t b = 0; b < hashes.size() && corrupted < 0; ++b)
      if (tiers->corrupt_for_test(hashes[b]).is_ok()) corrupted = static_cast<int>(b);
  });
  ASSERT_GE(corrupted, 0) << "none of X's blocks was in the decode worker's tier";
  EXPECT_EQ(o.tokens, expected_);
  const EngineStats& s = o.decode;
  EXPECT_EQ(s.kv_tier_host_corrupt_blocks, 1u);
  EXPECT_EQ(s.kv_imports, 1u);
  EXPECT_EQ(s.kv_import_fallbacks, 0u);
  EXPECT_EQ(s.kv_import_tier_blocks, 0u);  // nothing before the corrupt block came from the tier
  EXPECT_EQ(s.kv_import_fetched_blocks, kImportBlocks - static_cast<uint64_t>(corrupted));
}

}  // namespace
}  // namespace turbine::engine
