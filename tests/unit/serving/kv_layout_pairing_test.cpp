// Disaggregated serving through discovery (issue 8): model cards carry the engine's KV layout,
// and the frontend's ModelWatcher never pairs a prefill worker with decode workers whose KV
// blocks have another layout — whether the prefill worker registers after the model's decode
// workers or before them.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include "engine/async_engine.h"
#include "router/routed_engine.h"
#include "runtime/component.h"
#include "runtime/discovery.h"
#include "runtime/model_card.h"
#include "serving/connectors.h"
#include "serving/model_watcher.h"

namespace turbine::serving {
namespace {

using namespace turbine::runtime;  // keys, cards, discovery

using namespace std::chrono_literals;

// Accepts requests and never answers: the pairing rules do not need tokens.
class IdleEngine final : public engine::AsyncEngine {
 public:
  Status submit(engine::EngineRequest) override { return Status::ok(); }
  void cancel(uint64_t) override {}
  void shutdown() override {}
  engine::EngineStats stats() const override { return {}; }
  int max_context() const override { return 256; }
  int num_slots() const override { return 4; }
  int block_size() const override { return 16; }
};

constexpr const char* kBf16 = "bf16/16/32/8/128/2097152";
constexpr const char* kF16 = "f16/16/32/8/128/2097152";

class KvLayoutPairing : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = MemoryDiscovery::make_store();
    front_ = std::make_unique<MemoryDiscovery>(store_);
    ModelWatcherOptions o;
    o.ns = "pairing";
    o.disaggregate =
        [this](
            const ModelCard&, std::shared_ptr<router::RoutedEngine> decode,
            std::shared_ptr<router::RoutedEngine> prefill) -> std::shared_ptr<engine::AsyncEngine> {
      std::lock_guard lock(mu_);
      pool_ = std::move(prefill);
      return decode;
    };
    ModelEvents events;
    events.added = [](const ModelCard&, ModelEngine) { return Status::ok(); };
    events.removed = [](const std::string&) {};
    watcher_ = std::make_unique<ModelWatcher>(o, *front_, connector_, events);
    ASSERT_TRUE(watcher_->start().is_ok());
  }
  void TearDown() override {
    watcher_->stop();
    for (auto& d : workers_) d->shutdown();
  }

  // Registers a worker as `turbine worker` does; returns its instance id.
  uint64_t add(const char* component, const std::string& layout, int tensor_parallel_size = 1) {
    auto d = std::make_unique<MemoryDiscovery>(store_);
    const uint64_t id = d->instance_id();
    const EndpointId ep{"pairing", component, kGenerateEndpoint};
    connector_.add(id, std::make_shared<IdleEngine>());
    ModelCard card;
    card.model_name = "m";
    card.served_name = "m";
    card.context_length = 256;
    card.block_size = 16;
    card.kv_total_blocks = 64;
    card.max_num_seqs = 4;
    card.tokenizer_location = "/nowhere";
    card.address = "in-process:" + hex_id(id);
    card.kv_layout = layout;
    card.tensor_parallel_size = tensor_parallel_size;
    EXPECT_TRUE(d->register_key(instance_key(ep, id), to_json(InstanceRecord{ep, id, card.address}))
                    .is_ok());
    EXPECT_TRUE(d->register_key(model_card_key(ep, id), to_json(card)).is_ok());
    workers_.push_back(std::move(d));
    return id;
  }

  std::vector<uint64_t> pool_workers() {
    std::lock_guard lock(mu_);
    return pool_ ? pool_->worker_ids() : std::vector<uint64_t>{};
  }

  bool eventually(const std::function<bool()>& pred) {
    for (int i = 0; i < 200 && !pred(); ++i) std::this_thread::sleep_for(10ms);
    return pred();
  }

  std::shared_ptr<MemoryStore> store_;
  std::unique_ptr<MemoryDiscovery> front_;
  InProcessConnector connector_;
  std::unique_ptr<ModelWatcher> watcher_;
  std::vector<std::unique_ptr<MemoryDiscovery>> workers_;
  std::mutex mu_;
  std::shared_ptr<router::RoutedEngine> pool_;
};

TEST(ModelCardKvLayout, RoundTripsAndIsOptional) {
  engine::KvLayout l;
  l.dtype = "bf16";
  l.block_size = 16;
  l.n_layers = 32;
  l.n_kv_heads = 8;
  l.head_dim = 128;
  l.bytes_per_block = 2097152;
  EXPECT_EQ(kv_layout_string(l), kBf16);
  EXPECT_EQ(kv_layout_string(engine::KvLayout{}), "");
  ModelCard c;
  c.served_name = "m";
  c.context_length = 8;
  c.block_size = 16;
  c.kv_layout = kBf16;
  auto back = model_card_from_json(to_json(c));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->kv_layout, kBf16);
  c.kv_layout.clear();  // an older worker's card: no field, parses to empty
  EXPECT_EQ(to_json(c).find("kv_layout"), std::string::npos);
  back = model_card_from_json(to_json(c));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->kv_layout, "");
  EXPECT_EQ(back->tensor_parallel_size, 1);
}

TEST(ModelCardKvLayout, CarriesTheTensorParallelSize) {
  ModelCard c;
  c.served_name = "m";
  c.context_length = 8;
  c.block_size = 16;
  c.tensor_parallel_size = 4;
  auto back = model_card_from_json(to_json(c));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->tensor_parallel_size, 4);
  // An older worker's card has no field: 1.
  std::string old = to_json(c);
  old.erase(old.find(",\"tensor_parallel_size\":4"),
            std::string(",\"tensor_parallel_size\":4").size());
  back = model_card_from_json(old);
  ASSERT_TRUE(back.has_value()) << old;
  EXPECT_EQ(back->tensor_parallel_size, 1);
  c.tensor_parallel_size = 0;
  EXPECT_FALSE(model_card_from_json(to_json(c)).has_value());
}

// A tensor-parallel backend exports the whole model's layout, so the TP size does not split
// pools: the seed's TP-4 decode worker takes KV from 1-GPU prefill workers.
TEST_F(KvLayoutPairing, TensorParallelSizesDoNotPreventPairing) {
  add(kWorkerComponent, kBf16, 4);
  const uint64_t p1 = add(kPrefillComponent, kBf16, 1);
  const uint64_t p2 = add(kPrefillComponent, kBf16, 2);
  ASSERT_TRUE(eventually([&] { return pool_workers().size() == 2; }));
  auto ids = pool_workers();
  std::sort(ids.begin(), ids.end());
  std::vector<uint64_t> want = {p1, p2};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(ids, want);
}

TEST_F(KvLayoutPairing, APrefillWorkerOfAnotherLayoutIsNeverPaired) {
  add(kWorkerComponent, kBf16);
  const uint64_t other = add(kPrefillComponent, kF16);
  const uint64_t same = add(kPrefillComponent, kBf16);
  ASSERT_TRUE(eventually([&] { return pool_workers().size() == 1; }));
  EXPECT_EQ(pool_workers(), std::vector<uint64_t>{same});
  (void)other;
}

TEST_F(KvLayoutPairing, AnEarlierPrefillWorkerLeavesWhenTheDecodeLayoutDiffers) {
  const uint64_t early = add(kPrefillComponent, kF16);
  // No decode worker yet: nothing to compare with, the prefill worker joins the pool.
  ASSERT_TRUE(eventually([&] { return watcher_->instances().size() == 1; }));
  add(kWorkerComponent, kBf16);
  const uint64_t same = add(kPrefillComponent, kBf16);
  ASSERT_TRUE(eventually([&] {
    auto w = pool_workers();
    return w.size() == 1 && w[0] == same;
  })) << "early (other layout) "
      << early;
}

}  // namespace
}  // namespace turbine::serving
