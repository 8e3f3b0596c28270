// Cluster scenarios written once and run against every backend pair of the runtime:
//   memory  MemoryDiscovery + InProcessConnector (what `turbine run` uses)
//   etcd    a real etcd + TCP WorkerServer/RemoteEngine in this process (what `turbine frontend`
//           and `turbine worker` use; skipped without the etcd binary)
//   nats    a real etcd + the NATS request plane (MessageWorkerServer/MessageRemoteEngine) on a
//           real nats-server (`--request-plane nats`; skipped without the binaries)
// The "frontend" is a serving::ModelWatcher whose announced models are recorded here; workers are
// real engines on stories260K, greedy. Scenarios: a worker lost during concurrent streams (they
// migrate and produce the tokens they would have without the loss), a worker that joins takes
// requests, the model list follows the workers, and a draining worker finishes its requests.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "../runtime/test_processes.h"
#include "engine/backend.h"
#include "engine/engine.h"
#include "model/model.h"
#include "runtime/component.h"
#include "runtime/discovery.h"
#include "runtime/etcd_discovery.h"
#include "runtime/event_plane.h"
#include "runtime/message_request_plane.h"
#include "runtime/model_card.h"
#include "runtime/request_plane.h"
#include "serving/connectors.h"
#include "serving/model_watcher.h"
#include "test_support/missing_dependency.h"

namespace turbine::serving {
namespace {

using namespace turbine::runtime;  // discovery, request planes, keys and cards

using namespace std::chrono_literals;
using test_support::wait_until;

std::filesystem::path model_path() {
  const char* env = std::getenv("TURBINE_SHARED");
  return std::filesystem::path(env ? env : TURBINE_SHARED_DEFAULT) /
         "models/stories260K/stories260K.gguf";
}

std::shared_ptr<engine::Engine> make_engine(const model::Model& m) {
  engine::CpuBackendOptions b;
  b.n_threads = 1;
  b.max_num_seqs = 16;
  auto backend = engine::make_cpu_backend(m, b);
  EXPECT_TRUE(backend.has_value());
  engine::EngineOptions o;
  o.max_num_seqs = 16;
  return std::make_shared<engine::Engine>(std::move(*backend), m.config().n_vocab, o);
}

// One request's stream as the caller sees it.
struct Stream {
  std::mutex mu;
  std::vector<int32_t> tokens;
  engine::FinishReason finish = engine::FinishReason::kNone;
  Status error;
  std::promise<void> done;
  size_t n_tokens() {
    std::lock_guard lock(mu);
    return tokens.size();
  }
  bool finished() {
    std::lock_guard lock(mu);
    return finish != engine::FinishReason::kNone;
  }
};

engine::SamplingParams greedy(int max_tokens) {
  engine::SamplingParams p;
  p.temperature = 0;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

std::shared_ptr<Stream> start(engine::AsyncEngine& e, uint64_t id, std::vector<int32_t> prompt,
                              engine::SamplingParams p, uint64_t instance = 0) {
  auto s = std::make_shared<Stream>();
  engine::EngineRequest r;
  r.id = id;
  r.prompt = std::move(prompt);
  r.params = p;
  r.routing.instance_id = instance;
  r.on_output = [s](engine::EngineOutput&& out) {
    std::lock_guard lock(s->mu);
    for (const auto& t : out.tokens) s->tokens.push_back(t.token);
    if (out.finish != engine::FinishReason::kNone) {
      s->finish = out.finish;
      s->error = out.error;
      s->done.set_value();
    }
  };
  Status st = e.submit(std::move(r));
  if (!st.is_ok()) {
    s->finish = engine::FinishReason::kError;
    s->error = st;
    s->done.set_value();
  }
  return s;
}

bool wait(Stream& s, std::chrono::seconds timeout = 20s) {
  return s.done.get_future().wait_for(timeout) == std::future_status::ready;
}

std::vector<int32_t> prompt(int i) {
  // Distinct short prompts (BOS = 1, then ids of common stories260K tokens).
  return {1, 300 + 7 * i, 410 + i, 260 + 3 * i};
}

// Sleeps `pace` in every output callback (on the engine thread), so that streams last long
// enough for discovery events to arrive while they run.
class PacedEngine final : public engine::AsyncEngine {
 public:
  PacedEngine(std::shared_ptr<engine::AsyncEngine> e, std::chrono::microseconds pace)
      : e_(std::move(e)), pace_(pace) {}
  Status submit(engine::EngineRequest r) override {
    r.on_output = [cb = std::move(r.on_output), pace = pace_](engine::EngineOutput&& out) {
      std::this_thread::sleep_for(pace);
      cb(std::move(out));
    };
    return e_->submit(std::move(r));
  }
  void cancel(uint64_t id) override { e_->cancel(id); }
  void shutdown() override { e_->shutdown(); }
  engine::EngineStats stats() const override { return e_->stats(); }
  int max_context() const override { return e_->max_context(); }
  int num_slots() const override { return e_->num_slots(); }
  int block_size() const override { return e_->block_size(); }

 private:
  std::shared_ptr<engine::AsyncEngine> e_;
  std::chrono::microseconds pace_;
};

enum class Backend { kMemory, kEtcd, kNats };
std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  switch (info.param) {
    case Backend::kMemory: return "MemoryInProcess";
    case Backend::kEtcd: return "EtcdTcp";
    case Backend::kNats: return "EtcdNats";
  }
  return "?";
}

// A worker "process": its discovery client (lease = instance id), engine, and for TCP its server.
struct Worker {
  std::unique_ptr<Discovery> discovery;
  std::shared_ptr<engine::Engine> engine;
  std::unique_ptr<WorkerServer> server;
  std::shared_ptr<EventPlane> plane;
  std::unique_ptr<MessageWorkerServer> nats;
  uint64_t id = 0;
  EndpointId ep;
  bool gone = false;
};

class ClusterScenarios : public ::testing::TestWithParam<Backend> {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(model_path())) return;
    auto m = model::load_model(model_path());
    if (m) model_ = std::shared_ptr<const model::Model>(std::move(*m));
  }
  static void TearDownTestSuite() {
    test_support::stop_process(nats_pid_);
    nats_pid_ = -1;
    etcd_.reset();
    model_.reset();
  }

  void SetUp() override {
    if (!model_) TURBINE_MISSING_DEPENDENCY("no stories260K");
    ns_ = "t" + std::to_string(++counter_);
    if (GetParam() == Backend::kNats) {
#ifndef TURBINE_HAVE_NATS
      TURBINE_MISSING_DEPENDENCY("built without libnats");
#endif
      const std::string bin = test_support::find_nats_server();
      if (bin.empty()) TURBINE_MISSING_DEPENDENCY("nats-server is not installed");
      if (nats_pid_ <= 0) {
        nats_port_ = test_support::free_port();
        nats_pid_ = test_support::start_nats(bin, nats_port_);
      }
      front_plane_ = make_plane();
      ASSERT_TRUE(front_plane_);
      msg_ = std::make_unique<MessageConnector>(front_plane_, 1000ms);
      connector_ = msg_.get();
    }
    if (GetParam() != Backend::kMemory) {
      const std::string bin = test_support::find_etcd();
      if (bin.empty())
        TURBINE_MISSING_DEPENDENCY("etcd is not installed (scripts/install-deps installs it)");
      if (!etcd_) {
        etcd_ = std::make_unique<test_support::EtcdProcess>(bin);
        ASSERT_TRUE(etcd_->start()) << "etcd did not start";
      }
      if (GetParam() == Backend::kEtcd) {
        tcp_ = std::make_unique<TcpConnector>(2, 1);
        connector_ = tcp_.get();
      }
    } else {
      store_ = MemoryDiscovery::make_store();
      connector_ = &in_process_;
    }
    front_discovery_ = make_discovery();
    ASSERT_TRUE(front_discovery_);
  }

  void TearDown() override {
    if (watcher_) watcher_->stop();
    for (auto& w : workers_) stop(*w);
    {
      std::lock_guard lock(mu_);
      for (auto& [name, e] : served_) e->shutdown();
      served_.clear();
    }
    watcher_.reset();
    if (front_discovery_) front_discovery_->shutdown();
    tcp_.reset();
    msg_.reset();
    front_plane_.reset();
  }

  // A NATS connection of its own (as another process would have), once it is connected.
  std::shared_ptr<EventPlane> make_plane() {
    NatsOptions o;
    o.url = "nats://127.0.0.1:" + std::to_string(nats_port_);
    auto p = make_nats_event_plane(o);
    EXPECT_TRUE(p.has_value()) << p.status().to_string();
    if (!p) return nullptr;
    std::shared_ptr<EventPlane> plane = std::move(*p);
    EXPECT_TRUE(wait_until(
        [&] { return plane->subscribe("probe", [](std::string_view) {}).has_value(); }, 5s));
    return plane;
  }

  std::unique_ptr<Discovery> make_discovery() {
    if (GetParam() == Backend::kMemory) return std::make_unique<MemoryDiscovery>(store_);
    EtcdOptions o;
    o.endpoints = {etcd_->url()};
    o.lease_ttl_s = 3;
    o.request_timeout_ms = 1000;
    auto d = EtcdDiscovery::create(o);
    EXPECT_TRUE(d.has_value()) << d.status().to_string();
    return d ? std::unique_ptr<Discovery>(std::move(*d)) : nullptr;
  }

  void start_watcher(router::RouterMode mode = router::RouterMode::kRoundRobin) {
    ModelWatcherOptions o;
    o.ns = ns_;
    o.router.mode = mode;
    ModelEvents events;
    events.added = [this](const ModelCard& card, ModelEngine e) {
      std::lock_guard lock(mu_);
      served_[card.served_name] = std::move(e.engine);
      return Status::ok();
    };
    events.removed = [this](const std::string& name) {
      std::lock_guard lock(mu_);
      served_.erase(name);
    };
    watcher_ = std::make_unique<ModelWatcher>(o, *front_discovery_, *connector_, events);
    ASSERT_TRUE(watcher_->start().is_ok());
  }

  // Starts a worker of `served` and registers it as `turbine worker` does.
  Worker& add_worker(const std::string& served = "stories",
                     std::chrono::microseconds pace = std::chrono::microseconds(0)) {
    auto w = std::make_unique<Worker>();
    w->discovery = make_discovery();
    EXPECT_TRUE(w->discovery);
    w->id = w->discovery->instance_id();
    w->ep = EndpointId{ns_, kWorkerComponent, kGenerateEndpoint};
    w->engine = make_engine(*model_);
    ModelCard card;
    card.model_name = model_->name();
    card.served_name = served;
    card.context_length = w->engine->max_context();
    card.block_size = w->engine->block_size();
    card.kv_total_blocks = w->engine->stats().kv_total_blocks;
    card.max_num_seqs = w->engine->num_slots();
    card.tokenizer_location = model_path().string();
    std::shared_ptr<engine::AsyncEngine> serving = w->engine;
    if (pace.count() > 0) serving = std::make_shared<PacedEngine>(w->engine, pace);
    if (GetParam() == Backend::kNats) {
      w->plane = make_plane();
      MessageWorkerOptions mo;
      mo.heartbeat = 200ms;
      w->nats = std::make_unique<MessageWorkerServer>(w->plane, request_subject(w->ep, w->id),
                                                      serving, mo);
      EXPECT_TRUE(w->nats->start().is_ok());
      card.address = "nats:" + request_subject(w->ep, w->id);
    } else if (GetParam() == Backend::kEtcd) {
      WorkerServerOptions so;
      so.host = "127.0.0.1";
      w->server = std::make_unique<WorkerServer>(so, serving);
      EXPECT_TRUE(w->server->start().is_ok());
      card.address = "127.0.0.1:" + std::to_string(w->server->port());
    } else {
      in_process_.add(w->id, serving);
      card.address = "in-process:" + hex_id(w->id);
    }
    EXPECT_TRUE(w->discovery
                    ->register_key(instance_key(w->ep, w->id),
                                   to_json(InstanceRecord{w->ep, w->id, card.address}))
                    .is_ok());
    EXPECT_TRUE(w->discovery->register_key(model_card_key(w->ep, w->id), to_json(card)).is_ok());
    workers_.push_back(std::move(w));
    return *workers_.back();
  }

  // kill -9: the connection breaks at once; the lease goes later (here: revoked right after).
  void crash(Worker& w) {
    if (GetParam() == Backend::kNats) {
      w.nats->stop();  // silent from now on: the client notices within its silence timeout
    } else if (GetParam() == Backend::kEtcd) {
      w.server->stop();
    } else {
      in_process_.sever(w.id);
    }
    w.engine->shutdown();
    w.discovery->shutdown();
    w.gone = true;
  }
  // SIGTERM: deregister, let what runs finish, then stop.
  void deregister(Worker& w) {
    (void)w.discovery->unregister_key(model_card_key(w.ep, w.id));
    (void)w.discovery->unregister_key(instance_key(w.ep, w.id));
  }
  void stop(Worker& w) {
    if (w.gone) return;
    deregister(w);
    if (w.server) w.server->stop();
    if (w.nats) w.nats->stop();
    w.engine->shutdown();
    w.discovery->shutdown();
    w.gone = true;
  }

  std::shared_ptr<engine::AsyncEngine> served(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = served_.find(name);
    return it == served_.end() ? nullptr : it->second;
  }
  std::set<std::string> served_names() {
    std::lock_guard lock(mu_);
    std::set<std::string> out;
    for (const auto& [n, e] : served_) out.insert(n);
    return out;
  }
  bool has_workers(const std::string& name, size_t n) {
    return wait_until([&] { return watcher_->workers(name).size() == n; }, 10s);
  }

  // What a prompt produces on an engine of its own (no cluster, no failure).
  std::vector<std::vector<int32_t>> reference(int n, int max_tokens) {
    auto e = make_engine(*model_);
    std::vector<std::shared_ptr<Stream>> ss;
    for (int i = 0; i < n; ++i) ss.push_back(start(*e, 1000 + i, prompt(i), greedy(max_tokens)));
    std::vector<std::vector<int32_t>> out;
    for (auto& s : ss) {
      EXPECT_TRUE(wait(*s));
      out.push_back(s->tokens);
    }
    e->shutdown();
    return out;
  }

  static inline std::shared_ptr<const model::Model> model_;
  static inline std::unique_ptr<test_support::EtcdProcess> etcd_;
  static inline int counter_ = 0;
  static inline pid_t nats_pid_ = -1;
  static inline uint16_t nats_port_ = 0;
  std::shared_ptr<EventPlane> front_plane_;
  std::unique_ptr<MessageConnector> msg_;
  std::string ns_;
  std::shared_ptr<MemoryStore> store_;
  InProcessConnector in_process_;
  std::unique_ptr<TcpConnector> tcp_;
  InstanceConnector* connector_ = nullptr;
  std::unique_ptr<Discovery> front_discovery_;
  std::unique_ptr<ModelWatcher> watcher_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<engine::AsyncEngine>> served_;
};

TEST_P(ClusterScenarios, StreamsOfALostWorkerMigrateAndProduceTheSameTokens) {
  constexpr int kStreams = 9;
  constexpr int kMaxTokens = 160;
  const auto expected = reference(kStreams, kMaxTokens);
  start_watcher();
  Worker& a = add_worker();
  add_worker();
  add_worker();
  ASSERT_TRUE(has_workers("stories", 3));
  auto routed = watcher_->router_of("stories");
  ASSERT_TRUE(routed);
  auto model = served("stories");
  ASSERT_TRUE(model);
  std::vector<std::shared_ptr<Stream>> ss;
  for (int i = 0; i < kStreams; ++i)
    ss.push_back(start(*model, i + 1, prompt(i), greedy(kMaxTokens)));
  // Round-robin: a third of the streams run on `a`; lose it once they all stream.
  ASSERT_TRUE(wait_until(
      [&] {
        for (auto& s : ss)
          if (s->n_tokens() == 0) return false;
        return true;
      },
      10s));
  ASSERT_GT(a.engine->stats().running, 0) << "the streams finished before the failure";
  crash(a);
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(wait(*ss[i])) << "stream " << i << " hangs";
    EXPECT_EQ(ss[i]->finish, engine::FinishReason::kLength) << ss[i]->error.to_string();
    EXPECT_EQ(ss[i]->tokens, expected[i]) << "stream " << i;
  }
  EXPECT_GE(routed->router_stats().migrations, 1u);
  EXPECT_TRUE(has_workers("stories", 2));  // its lease is gone too
}

TEST_P(ClusterScenarios, AWorkerThatJoinsTakesRequestsWithoutRestart) {
  start_watcher();
  add_worker();
  ASSERT_TRUE(has_workers("stories", 1));
  auto model = served("stories");
  ASSERT_TRUE(model);
  Worker& late = add_worker();
  ASSERT_TRUE(has_workers("stories", 2));
  EXPECT_EQ(served("stories"), model);  // the same model, one more worker
  std::vector<std::shared_ptr<Stream>> ss;
  for (int i = 0; i < 4; ++i) ss.push_back(start(*model, i + 1, prompt(i), greedy(8)));
  for (auto& s : ss) {
    ASSERT_TRUE(wait(*s));
    EXPECT_EQ(s->finish, engine::FinishReason::kLength) << s->error.to_string();
  }
  EXPECT_EQ(late.engine->stats().generated_tokens, 16u);  // round-robin: 2 of the 4 requests
  // And by instance id (x-worker-instance-id).
  auto direct = start(*model, 9, prompt(5), greedy(4), late.id);
  ASSERT_TRUE(wait(*direct));
  EXPECT_EQ(direct->finish, engine::FinishReason::kLength);
  EXPECT_EQ(late.engine->stats().generated_tokens, 20u);
}

TEST_P(ClusterScenarios, TheModelListFollowsTheWorkers) {
  start_watcher();
  EXPECT_TRUE(served_names().empty());
  Worker& a1 = add_worker("a");
  Worker& a2 = add_worker("a");
  Worker& b = add_worker("b");
  ASSERT_TRUE(has_workers("a", 2));
  ASSERT_TRUE(has_workers("b", 1));
  EXPECT_EQ(served_names(), (std::set<std::string>{"a", "b"}));
  stop(b);
  ASSERT_TRUE(wait_until([&] { return served_names() == std::set<std::string>{"a"}; }, 10s));
  stop(a1);
  ASSERT_TRUE(has_workers("a", 1));
  EXPECT_EQ(served_names(), (std::set<std::string>{"a"}));  // one worker left serves it
  auto model = served("a");
  auto s = start(*model, 1, prompt(1), greedy(4));
  ASSERT_TRUE(wait(*s));
  EXPECT_EQ(s->finish, engine::FinishReason::kLength) << s->error.to_string();
  crash(a2);
  EXPECT_TRUE(wait_until([&] { return served_names().empty(); }, 10s));
  EXPECT_TRUE(watcher_->model_names().empty());
}

TEST_P(ClusterScenarios, ADrainingWorkerFinishesItsInFlightRequests) {
  constexpr int kStreams = 4;
  constexpr int kMaxTokens = 160;
  const auto expected = reference(kStreams, kMaxTokens);
  start_watcher();
  Worker& d = add_worker("stories", 1ms);  // ~0.6 s of streaming: the drain lands mid-stream
  Worker& other = add_worker();
  ASSERT_TRUE(has_workers("stories", 2));
  auto model = served("stories");
  auto routed = watcher_->router_of("stories");
  ASSERT_TRUE(model && routed);
  std::vector<std::shared_ptr<Stream>> ss;
  for (int i = 0; i < kStreams; ++i)
    ss.push_back(start(*model, i + 1, prompt(i), greedy(kMaxTokens), d.id));
  ASSERT_TRUE(wait_until(
      [&] {
        for (auto& s : ss)
          if (s->n_tokens() == 0) return false;
        return true;
      },
      10s));
  deregister(d);  // SIGTERM: deregister first
  ASSERT_TRUE(has_workers("stories", 1));
  int unfinished = 0;
  for (auto& s : ss) unfinished += s->finished() ? 0 : 1;
  ASSERT_GT(unfinished, 0) << "the streams finished before the drain";
  // New requests go elsewhere while the drained worker finishes its own.
  auto fresh = start(*model, 50, prompt(7), greedy(4));
  ASSERT_TRUE(wait(*fresh));
  EXPECT_EQ(fresh->finish, engine::FinishReason::kLength) << fresh->error.to_string();
  EXPECT_EQ(other.engine->stats().generated_tokens, 4u);
  // Addressing the draining worker by id is refused.
  auto pinned = start(*model, 51, prompt(8), greedy(4), d.id);
  ASSERT_TRUE(wait(*pinned));
  EXPECT_EQ(pinned->finish, engine::FinishReason::kError);
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(wait(*ss[i]));
    EXPECT_EQ(ss[i]->finish, engine::FinishReason::kLength) << ss[i]->error.to_string();
    EXPECT_EQ(ss[i]->tokens, expected[i]);
  }
  // Every token of the drained streams came from the draining worker: nothing migrated.
  EXPECT_EQ(d.engine->stats().generated_tokens, static_cast<uint64_t>(kStreams * kMaxTokens));
  EXPECT_EQ(routed->router_stats().migrations, 0u);
  EXPECT_TRUE(wait_until([&] { return routed->worker_ids().size() == 1; }, 5s));
  stop(d);  // then it exits
}

INSTANTIATE_TEST_SUITE_P(Backends, ClusterScenarios,
                         ::testing::Values(Backend::kMemory, Backend::kEtcd, Backend::kNats),
                         backend_name);

}  // namespace
}  // namespace turbine::serving
