// Disaggregated serving over the TCP request plane (issue 8): two WorkerServers in this process,
// a prefill worker and a decode worker, reached through RemoteEngines as a frontend reaches them;
// the decode worker pulls KV blocks from the prefill worker's WorkerServer (KvPull frames).
#include <gtest/gtest.h>

#include "disagg/disagg_engine.h"
#include "disagg_test_util.h"
#include "mock/mock_engine.h"
#include "router/routed_engine.h"
#include "runtime/io_threads.h"
#include "runtime/kv_transfer_tcp.h"
#include "runtime/request_plane.h"
#include "runtime/wire.h"

namespace turbine::disagg {
namespace {

using namespace testing;  // NOLINT
using engine::FinishReason;

TEST(DisaggWire, RequestAndOutputCarryTheTransferMetadata) {
  auto meta = std::make_shared<engine::KvTransferMeta>();
  meta->transfer_id = 42;
  meta->instance_id = 0xabc;
  meta->address = "10.0.0.1:7000";
  meta->layout = {"f32", 16, 5, 4, 8, 20480};
  meta->num_tokens = 35;
  meta->block_ids = {3, 9, 4};
  meta->block_hashes = {0x1111, 0x2222};
  runtime::RequestFrame rf;
  rf.id = 5;
  rf.prompt = {1, 2, 3};
  rf.disagg.import = meta;
  std::string buf;
  runtime::encode(rf, buf);
  runtime::OutputFrame of;
  of.id = 6;
  of.output.finish = FinishReason::kLength;
  of.output.kv_transfer = meta;
  runtime::encode(of, buf);
  runtime::RequestFrame plain;
  plain.id = 7;
  plain.prompt = {1};
  plain.disagg.prefill_only = true;
  runtime::encode(plain, buf);
  runtime::encode(runtime::KvPullFrame{8, 42, 1, 2}, buf);
  runtime::encode(runtime::KvDataFrame{8, Status::ok(), std::string("\x01\x02", 2)}, buf);
  runtime::encode(runtime::KvReleaseFrame{42}, buf);

  std::span<const uint8_t> rest(reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
  std::vector<runtime::Frame> frames;
  while (!rest.empty()) {
    auto size = runtime::frame_size(rest);
    ASSERT_TRUE(size.has_value() && *size > 0);
    auto f = runtime::decode(rest.first(*size));
    ASSERT_TRUE(f.has_value()) << f.status().to_string();
    frames.push_back(std::move(*f));
    rest = rest.subspan(*size);
  }
  ASSERT_EQ(frames.size(), 6u);
  const auto& r = std::get<runtime::RequestFrame>(frames[0]);
  ASSERT_TRUE(r.disagg.import);
  EXPECT_FALSE(r.disagg.prefill_only);
  EXPECT_EQ(r.disagg.import->layout, meta->layout);
  EXPECT_EQ(r.disagg.import->block_ids, meta->block_ids);
  EXPECT_EQ(r.disagg.import->block_hashes, meta->block_hashes);
  EXPECT_EQ(r.disagg.import->address, meta->address);
  EXPECT_EQ(r.disagg.import->num_tokens, 35);
  const auto& o = std::get<runtime::OutputFrame>(frames[1]);
  ASSERT_TRUE(o.output.kv_transfer);
  EXPECT_EQ(o.output.kv_transfer->transfer_id, 42u);
  EXPECT_EQ(o.output.kv_transfer->instance_id, 0xabcu);
  const auto& p = std::get<runtime::RequestFrame>(frames[2]);
  EXPECT_TRUE(p.disagg.prefill_only);
  EXPECT_FALSE(p.disagg.import);
  EXPECT_EQ(std::get<runtime::KvPullFrame>(frames[3]).n_blocks, 2);
  EXPECT_EQ(std::get<runtime::KvDataFrame>(frames[4]).bytes.size(), 2u);
  EXPECT_EQ(std::get<runtime::KvReleaseFrame>(frames[5]).transfer_id, 42u);

  // A plain request is byte-identical to the pre-disaggregation frame: no trailing section.
  std::string a, b;
  runtime::RequestFrame x;
  x.id = 1;
  x.prompt = {4, 5};
  runtime::encode(x, a);
  x.disagg = {};
  runtime::encode(x, b);
  EXPECT_EQ(a, b);
  // A truncated metadata section is refused.
  std::string cut;
  runtime::encode(rf, cut);
  cut.resize(cut.size() - 3);
  const uint32_t len = static_cast<uint32_t>(cut.size() - 4);
  std::memcpy(cut.data(), &len, 4);
  EXPECT_FALSE(
      runtime::decode({reinterpret_cast<const uint8_t*>(cut.data()), cut.size()}).has_value());
}

// One worker process's worth: an engine behind a WorkerServer on 127.0.0.1:0.
struct Worker {
  std::shared_ptr<engine::Engine> engine;
  std::unique_ptr<runtime::WorkerServer> server;
  std::shared_ptr<runtime::RemoteEngine> remote;  // the frontend's handle
  uint64_t id = 0;

  Worker(uint64_t instance_id, std::shared_ptr<engine::KvTransfer> transfer,
         boost::asio::any_io_executor frontend_executor)
      : id(instance_id) {
    EngineSetup s;
    s.instance_id = instance_id;
    s.transfer = std::move(transfer);
    s.max_num_seqs = 8;  // every request of the suite at once
    engine = make_engine(s);
    runtime::WorkerServerOptions wo;
    wo.host = "127.0.0.1";
    server = std::make_unique<runtime::WorkerServer>(wo, engine);
    server->set_kv_source(engine, "127.0.0.1");
    EXPECT_TRUE(server->start().is_ok());
    runtime::RemoteEngineOptions ro;
    ro.address = "127.0.0.1:" + std::to_string(server->port());
    ro.max_context = engine->max_context();
    ro.block_size = engine->block_size();
    ro.num_slots = engine->num_slots();
    ro.kv_total_blocks = engine->stats().kv_total_blocks;
    remote = std::make_shared<runtime::RemoteEngine>(ro, frontend_executor);
  }
  // The process dies: its server closes every connection, its engine stops.
  void vanish() {
    server->stop();
    engine->shutdown();
  }
};

struct TcpDisagg {
  runtime::IoThreads frontend_io{1};
  std::shared_ptr<runtime::TcpKvTransfer> tcp = std::make_shared<runtime::TcpKvTransfer>();
  std::shared_ptr<FaultyTransfer> decode_transfer = std::make_shared<FaultyTransfer>(tcp);
  std::unique_ptr<Worker> prefill, decode;
  std::shared_ptr<router::RoutedEngine> prefill_pool, decode_pool;
  std::unique_ptr<DisaggEngine> engine;

  TcpDisagg() {
    prefill = std::make_unique<Worker>(0x11, nullptr, frontend_io.executor());
    decode = std::make_unique<Worker>(0x22, decode_transfer, frontend_io.executor());
    prefill_pool = std::make_shared<router::RoutedEngine>(router::RouterOptions{});
    prefill_pool->add_worker({0x11, 16, prefill->engine->stats().kv_total_blocks}, prefill->remote);
    decode_pool = std::make_shared<router::RoutedEngine>(router::RouterOptions{});
    decode_pool->add_worker({0x22, 16, decode->engine->stats().kv_total_blocks}, decode->remote);
    DisaggOptions o;
    o.max_local_prefill_length = 0;
    o.max_inflight_prefills = 64;
    // The frontend releases transfers it does not continue with over TCP too.
    engine = std::make_unique<DisaggEngine>(o, prefill_pool, decode_pool, tcp);
  }
  ~TcpDisagg() {
    engine->shutdown();
    prefill->server->stop();
    decode->server->stop();
  }
};

TEST(TcpDisaggTest, GreedyOutputsMatchAndRepeatsMoveOnlyMissingBlocks) {
  REQUIRE_STORIES();
  const int kMax = 32;
  const auto expected = aggregated_outputs(kMax);
  TcpDisagg d;
  const auto prompts = prompt_suite();
  auto futs = submit_all(*d.engine, prompts, kMax);
  for (const Collected& c : expect_length_outputs(futs, expected))
    EXPECT_EQ(c.completion_tokens, kMax);
  auto s1 = d.decode->engine->stats();
  EXPECT_EQ(s1.kv_imports, prompts.size());
  EXPECT_EQ(s1.kv_import_fallbacks, 0u);
  const auto t = d.tcp->stats();
  EXPECT_EQ(t.failures, 0u);
  EXPECT_EQ(t.bytes, s1.kv_import_bytes);
  EXPECT_GT(t.bytes, 0u);
  // The engine reports its transport's counters (for turbine_kv_transport_*{transport="tcp"}).
  ASSERT_EQ(s1.kv_transports.size(), 1u);
  EXPECT_EQ(s1.kv_transports[0].transport, "tcp");
  EXPECT_EQ(s1.kv_transports[0].bytes, t.bytes);
  EXPECT_EQ(s1.kv_transports[0].fetches, t.fetches);

  // The long prompt again: only its partial last block crosses the network.
  const auto& longest = prompts.back();
  Collected again = wait(submit(*d.engine, 99, longest, greedy(kMax)));
  EXPECT_EQ(again.tokens, expected.back());
  auto s2 = d.decode->engine->stats();
  EXPECT_EQ(s2.kv_import_fetched_blocks - s1.kv_import_fetched_blocks, 1u);
  EXPECT_EQ(s2.kv_import_reused_blocks - s1.kv_import_reused_blocks, longest.size() / 16);

  EXPECT_TRUE(eventually([&] { return d.prefill->engine->stats().kv_used_blocks == 0; }));
  EXPECT_TRUE(eventually([&] { return d.decode->engine->stats().kv_used_blocks == 0; }));
}

// The prefill worker dies between its prefill and the decode worker's pull: the decode worker
// prefills locally (same text), and later requests (prefill worker unreachable) are served too.
TEST(TcpDisaggTest, PrefillWorkerVanishingMidTransferFallsBack) {
  REQUIRE_STORIES();
  const int kMax = 20;
  const auto expected = aggregated_outputs(kMax);
  TcpDisagg d;
  const auto prompts = prompt_suite();
  d.decode_transfer->set_mode(FaultyTransfer::Mode::kHold);
  auto futs = submit_all(*d.engine, prompts, kMax);
  ASSERT_TRUE(
      eventually([&] { return d.decode_transfer->parked() == static_cast<int>(prompts.size()); }));
  d.prefill->vanish();
  d.decode_transfer->resume_held();  // the pulls now hit a closed port
  expect_length_outputs(futs, expected);
  EXPECT_EQ(d.decode->engine->stats().kv_import_fallbacks, prompts.size());
  EXPECT_GE(d.tcp->stats().failures, prompts.size());
  // The prefill worker is gone for good: requests still complete, prefilled on the decoder.
  Collected late = wait(submit(*d.engine, 50, prompts[2], greedy(kMax)));
  EXPECT_EQ(late.finish, FinishReason::kLength) << late.error.to_string();
  EXPECT_EQ(late.tokens, expected[2]);
  EXPECT_GE(d.engine->disagg_stats().prefill_failures, 1u);
  EXPECT_TRUE(eventually([&] { return d.decode->engine->stats().kv_used_blocks == 0; }));
}

// Mock workers (`turbine worker --engine mock`) disaggregate over TCP too: the simulated layout's
// blocks cross the wire as empty KvData answers, and the decode side's simulated link models
// their time.
TEST(TcpDisaggTest, MockWorkersImportOverTcpWithoutBytes) {
  runtime::IoThreads frontend_io{1};
  mock::MockEngineOptions po;
  po.n_vocab = 5000;
  po.num_blocks = 512;
  po.speedup = 20;
  po.instance_id = 0x11;
  auto prefill = std::make_shared<mock::MockEngine>(po);
  runtime::WorkerServerOptions wo;
  wo.host = "127.0.0.1";
  runtime::WorkerServer server(wo, prefill);
  server.set_kv_source(prefill, "127.0.0.1");
  ASSERT_TRUE(server.start().is_ok());
  runtime::RemoteEngineOptions ro;
  ro.address = "127.0.0.1:" + std::to_string(server.port());
  ro.max_context = prefill->max_context();
  ro.block_size = prefill->block_size();
  ro.num_slots = prefill->num_slots();
  ro.kv_total_blocks = po.num_blocks;
  auto remote = std::make_shared<runtime::RemoteEngine>(ro, frontend_io.executor());
  auto tcp = std::make_shared<runtime::TcpKvTransfer>();
  mock::MockEngineOptions dopt = po;
  dopt.instance_id = 0x22;
  dopt.kv_transfer = tcp;
  auto decode = std::make_shared<mock::MockEngine>(dopt);

  std::vector<int32_t> prompt(160);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(i + 1);
  engine::KvDisagg pre_only;
  pre_only.prefill_only = true;
  const Collected pre = wait(submit(*remote, 1, prompt, greedy(10), pre_only));
  ASSERT_NE(pre.kv_transfer, nullptr);
  EXPECT_FALSE(pre.kv_transfer->address.empty());
  EXPECT_EQ(pre.kv_transfer->layout.dtype, "sim");
  std::vector<int32_t> cont = prompt;
  cont.push_back(pre.tokens.at(0));
  engine::KvDisagg import;
  import.import = pre.kv_transfer;
  const Collected dec = wait(submit(*decode, 2, cont, greedy(5), import));
  EXPECT_EQ(dec.finish, FinishReason::kLength) << dec.error.to_string();
  EXPECT_EQ(dec.tokens.size(), 5u);
  const engine::EngineStats d = decode->stats();
  EXPECT_EQ(d.kv_imports, 1u);
  EXPECT_EQ(d.kv_import_fallbacks, 0u);
  EXPECT_EQ(d.kv_import_fetched_blocks, 10u);
  EXPECT_EQ(d.kv_import_bytes, 10u * 16u * (128u << 10));  // what the link modelled
  const engine::KvTransportStats t = tcp->stats();
  EXPECT_EQ(t.fetches, 1u);
  EXPECT_EQ(t.failures, 0u);
  EXPECT_EQ(t.bytes, 0u);  // nothing crossed the wire
  EXPECT_TRUE(eventually([&] { return prefill->stats().kv_used_blocks == 0; }));
  EXPECT_TRUE(eventually([&] { return decode->stats().kv_used_blocks == 0; }));
  decode->shutdown();
  server.stop();
  prefill->shutdown();
}

}  // namespace
}  // namespace turbine::disagg
