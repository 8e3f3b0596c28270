// serving/ composes engines without casts: the watcher announces typed handles (the engine and
// the router in front of the workers), the disaggregated composition takes its cached-prefix
// function from that router, `turbine run`'s workers and prefill pool get their engines from a
// factory with the right ids, sinks and transfer, and the frontend's registry needs a model's
// metadata only, not its weights.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>
#include <vector>

#include "frontend/frontend.h"
#include "kv/block_hash.h"
#include "model/model.h"
#include "runtime/component.h"
#include "runtime/discovery.h"
#include "runtime/model_card.h"
#include "serving/connectors.h"
#include "serving/disagg_composition.h"
#include "serving/frontend_models.h"
#include "serving/in_process_workers.h"
#include "serving/model_watcher.h"
#include "test_support/missing_dependency.h"

namespace turbine::serving {
namespace {

namespace fs = std::filesystem;
constexpr int kBs = 16;

// Accepts requests and never answers; a source of KV transfers that holds none.
class IdleEngine final : public engine::AsyncEngine, public engine::KvTransferSource {
 public:
  Status submit(engine::EngineRequest) override { return Status::ok(); }
  void cancel(uint64_t) override {}
  void shutdown() override {}
  engine::EngineStats stats() const override { return {}; }
  int max_context() const override { return 256; }
  int num_slots() const override { return 4; }
  int block_size() const override { return kBs; }
  void read_transfer(uint64_t, int, int, engine::KvBytesCallback done) override {
    done(Status(StatusCode::kNotFound, "no transfer"));
  }
  void release_transfer(uint64_t) override {}
  engine::KvLayout kv_layout() const override { return {}; }
};

std::vector<int32_t> seq(int n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), 100);
  return t;
}

kv::KvEvent stored(const std::vector<int32_t>& tokens) {
  const auto h = kv::block_hashes(tokens, kBs);
  kv::BlockStored s;
  for (size_t i = 0; i < h.local.size(); ++i) s.blocks.push_back({h.sequence[i], h.local[i]});
  s.block_size = kBs;
  return kv::KvEvent{kv::kKvEventsVersion, 0, s};
}

runtime::ModelCard card_for(uint64_t id, const std::string& location = "/nowhere") {
  runtime::ModelCard card;
  card.model_name = "m";
  card.served_name = "m";
  card.context_length = 256;
  card.block_size = kBs;
  card.kv_total_blocks = 64;
  card.max_num_seqs = 4;
  card.tokenizer_location = location;
  card.address = "in-process:" + runtime::hex_id(id);
  return card;
}

// A frontend-less watcher over memory discovery with in-process workers.
class Watched : public ::testing::Test {
 protected:
  void start(bool use_router) {
    store_ = runtime::MemoryDiscovery::make_store();
    front_ = std::make_unique<runtime::MemoryDiscovery>(store_);
    ModelWatcherOptions o;
    o.use_router = use_router;
    ModelEvents events;
    events.added = [this](const runtime::ModelCard&, ModelEngine e) {
      std::lock_guard lock(mu_);
      announced_.push_back(std::move(e));
      return Status::ok();
    };
    events.removed = [](const std::string&) {};
    watcher_ = std::make_unique<ModelWatcher>(o, *front_, connector_, events);
    ASSERT_TRUE(watcher_->start().is_ok());
  }
  void TearDown() override {
    if (watcher_) watcher_->stop();
    for (auto& d : workers_) d->shutdown();
  }
  uint64_t add_worker() {
    auto d = std::make_unique<runtime::MemoryDiscovery>(store_);
    const uint64_t id = d->instance_id();
    const runtime::EndpointId ep;
    connector_.add(id, std::make_shared<IdleEngine>());
    const runtime::ModelCard card = card_for(id);
    EXPECT_TRUE(d->register_key(runtime::model_card_key(ep, id), runtime::to_json(card)).is_ok());
    workers_.push_back(std::move(d));
    return id;
  }

  std::shared_ptr<runtime::MemoryStore> store_;
  std::unique_ptr<runtime::MemoryDiscovery> front_;
  InProcessConnector connector_;
  std::unique_ptr<ModelWatcher> watcher_;
  std::vector<std::unique_ptr<runtime::MemoryDiscovery>> workers_;
  std::mutex mu_;
  std::vector<ModelEngine> announced_;
};

TEST_F(Watched, AnnouncesTheRouterTypedAndItsIndexFeedsThePolicy) {
  start(true);
  const uint64_t a = add_worker();
  add_worker();
  ASSERT_EQ(announced_.size(), 1u);  // the model once, with its first worker
  const ModelEngine& m = announced_[0];
  ASSERT_NE(m.router, nullptr);
  EXPECT_EQ(m.engine.get(), static_cast<engine::AsyncEngine*>(m.router.get()));
  EXPECT_EQ(m.router->worker_ids().size(), 2u);
  EXPECT_EQ(watcher_->router_of("m"), m.router);

  auto cached = decode_cached_tokens(m.router);
  ASSERT_TRUE(cached);
  const auto prompt = seq(3 * kBs + 5);
  EXPECT_EQ(cached(prompt), 0);
  // A worker's KV events reach the router through the watcher; the policy sees whole blocks.
  WatcherKvSink(watcher_.get(), a).publish(stored(seq(2 * kBs)));
  EXPECT_EQ(cached(prompt), 2 * kBs);
}

TEST_F(Watched, OneWorkerWithoutARouterHasNoRouterHandle) {
  start(false);
  add_worker();
  ASSERT_EQ(announced_.size(), 1u);
  EXPECT_EQ(announced_[0].router, nullptr);
  EXPECT_NE(announced_[0].engine, nullptr);
  EXPECT_FALSE(decode_cached_tokens(nullptr));
  add_worker();  // refused: one worker without a router
  EXPECT_EQ(watcher_->workers("m").size(), 1u);
}

// The factory sees what serving asks of each engine.
struct Factory {
  std::mutex mu;
  std::vector<WorkerEngineSpec> specs;
  Status fail = Status::ok();
  bool with_source = true;
  WorkerEngineFactory make() {
    return [this](const WorkerEngineSpec& spec) -> Result<WorkerEngine> {
      std::lock_guard lock(mu);
      if (!fail.is_ok()) return fail;
      specs.push_back(spec);
      auto e = std::make_shared<IdleEngine>();
      return WorkerEngine{e, with_source ? e : nullptr, 64};
    };
  }
};

TEST(InProcessComposition, PrefillPoolAndWorkersGetIdsSinksAndTheTransfer) {
  Factory prefill_engines, decode_engines;
  InProcessPrefillOptions po;
  po.prefill_workers = 2;
  auto pool = InProcessPrefillPool::start(po, prefill_engines.make());
  ASSERT_TRUE(pool.has_value()) << pool.status().to_string();
  ASSERT_EQ(prefill_engines.specs.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const WorkerEngineSpec& s = prefill_engines.specs[static_cast<size_t>(i)];
    EXPECT_EQ(s.instance_id, in_process_prefill_worker_id(i));
    EXPECT_NE(s.kv_event_sink, nullptr);  // to the prefill pool's router
    EXPECT_EQ(s.kv_transfer, nullptr);    // prefill workers import nothing
  }
  ASSERT_NE((*pool)->transfer(), nullptr);

  std::vector<ModelEngine> announced;
  ModelEvents events;
  events.added = [&](const runtime::ModelCard&, ModelEngine e) {
    announced.push_back(std::move(e));
    return Status::ok();
  };
  events.removed = [](const std::string&) {};
  InProcessWorkersOptions wo;
  wo.workers = 3;
  wo.model_name = "m";
  wo.served_name = "served";
  wo.model_location = "/nowhere";
  wo.kv_transfer = (*pool)->transfer();
  auto workers = InProcessWorkers::start(wo, decode_engines.make(), (*pool)->wrap(events));
  ASSERT_TRUE(workers.has_value()) << workers.status().to_string();
  ASSERT_EQ(decode_engines.specs.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const WorkerEngineSpec& s = decode_engines.specs[static_cast<size_t>(i)];
    EXPECT_EQ(s.instance_id, in_process_worker_id(i));
    EXPECT_NE(s.kv_event_sink, nullptr);
    EXPECT_EQ(s.kv_transfer, (*pool)->transfer());
  }
  ASSERT_EQ(announced.size(), 1u);
  // Served through a DisaggEngine in front of the decode router; the router stays reachable.
  ASSERT_NE(announced[0].router, nullptr);
  EXPECT_NE(announced[0].engine.get(),
            static_cast<engine::AsyncEngine*>(announced[0].router.get()));
  EXPECT_EQ((*workers)->watcher().router_of("served"), announced[0].router);
  EXPECT_EQ(announced[0].router->worker_ids().size(), 3u);
}

TEST(InProcessComposition, FactoryErrorsAndMissingSourcesAreRefused) {
  Factory broken;
  broken.fail = Status(StatusCode::kResourceExhausted, "no memory for the KV cache");
  InProcessWorkersOptions wo;
  wo.served_name = "m";
  auto workers = InProcessWorkers::start(
      wo, broken.make(), {[](auto&&...) { return Status::ok(); }, [](const std::string&) {}});
  ASSERT_FALSE(workers.has_value());
  EXPECT_EQ(workers.status().code(), StatusCode::kResourceExhausted);

  Factory sourceless;
  sourceless.with_source = false;
  auto pool = InProcessPrefillPool::start({}, sourceless.make());
  ASSERT_FALSE(pool.has_value());
  EXPECT_EQ(pool.status().code(), StatusCode::kInvalidArgument);

  wo.workers = 2;
  wo.use_router = false;
  EXPECT_FALSE(InProcessWorkers::start(wo, Factory{}.make(), {}).has_value());
}

// The registry loads a card's vocabulary and context from the metadata: a llama2.c checkpoint
// cut down to its header still serves (the full loader refuses it).
TEST(FrontendModels, NeedTheMetadataNotTheWeights) {
  const fs::path shared = [] {
    const char* env = std::getenv("TURBINE_SHARED");
    return fs::path(env ? env : TURBINE_SHARED_DEFAULT);
  }();
  const fs::path bin = shared / "models/stories260K/stories260K.bin";
  const fs::path tok = shared / "models/stories260K/tok512.bin";
  if (!fs::exists(bin) || !fs::exists(tok)) TURBINE_MISSING_DEPENDENCY("no stories260K.bin");
  const fs::path dir = fs::temp_directory_path() / ("serving_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ifstream in(bin, std::ios::binary);
    char header[28];
    in.read(header, sizeof header);
    std::ofstream(dir / "stories260K.bin", std::ios::binary).write(header, sizeof header);
  }
  fs::copy_file(tok, dir / "tokenizer.bin", fs::copy_options::overwrite_existing);
  EXPECT_FALSE(model::load_model(dir / "stories260K.bin").has_value());

  auto front = frontend::Frontend::create(frontend::FrontendOptions{});
  ASSERT_TRUE(front.has_value());
  FrontendModels models(**front);
  ModelEvents events = models.events();
  auto card = card_for(1, (dir / "stories260K.bin").string());
  Status st = events.added(card, {std::make_shared<IdleEngine>(), nullptr});
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ((*front)->model_names(), std::vector<std::string>{"m"});

  card.served_name = "broken";
  card.tokenizer_location = (dir / "missing.gguf").string();
  st = events.added(card, {std::make_shared<IdleEngine>(), nullptr});
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("missing.gguf"), std::string::npos);
  EXPECT_EQ((*front)->model_names(), std::vector<std::string>{"m"});
  events.removed("m");
  EXPECT_TRUE((*front)->model_names().empty());
  (*front)->shutdown(std::chrono::milliseconds(0));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace turbine::serving
