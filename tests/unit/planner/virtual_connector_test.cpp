// The virtual connector and worker counting over in-memory discovery.
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "planner/connector.h"
#include "runtime/component.h"
#include "runtime/discovery.h"
#include "runtime/model_card.h"

namespace turbine::planner {
namespace {

// Registers a worker's model card the way `turbine worker` does.
void register_worker(runtime::Discovery& d, const std::string& component,
                     const std::string& model) {
  runtime::EndpointId ep{"ns", component, "generate"};
  runtime::ModelCard card;
  card.served_name = model;
  card.model_name = model;
  ASSERT_TRUE(
      d.register_key(runtime::model_card_key(ep, d.instance_id()), runtime::to_json(card)).is_ok());
}

TEST(VirtualConnector, WritesDecisionsAndCountsRegisteredWorkers) {
  auto store = runtime::MemoryDiscovery::make_store();
  auto planner_side = std::make_shared<runtime::MemoryDiscovery>(store);
  runtime::MemoryDiscovery w1(store), w2(store), w3(store), other(store);
  register_worker(w1, runtime::kWorkerComponent, "m");
  register_worker(w2, runtime::kWorkerComponent, "m");
  register_worker(w3, runtime::kPrefillComponent, "m");
  register_worker(other, runtime::kWorkerComponent, "n");

  auto counts = count_registered_workers(*planner_side, "ns");
  ASSERT_TRUE(counts.has_value());
  auto count = [&](const std::string& model, PoolRole role) { return (*counts)[{model, role}]; };
  EXPECT_EQ(count("m", PoolRole::kDecode), 2);
  EXPECT_EQ(count("m", PoolRole::kPrefill), 1);
  EXPECT_EQ(count("n", PoolRole::kDecode), 1);

  auto c = make_virtual_connector(planner_side, "ns");
  ModelConfig m;
  m.name = "m";
  PoolConfig decode;
  m.pools.push_back(decode);
  PoolState s = *c->state(m, m.pools[0]);
  EXPECT_EQ(s.replicas, 2);  // no decision yet: what runs
  EXPECT_EQ(s.ready, 2);
  ASSERT_TRUE(c->scale(m, m.pools[0], 4, "more load").is_ok());
  s = *c->state(m, m.pools[0]);
  EXPECT_EQ(s.replicas, 4);
  EXPECT_EQ(s.ready, 2);  // until someone starts them
  auto kv = planner_side->list(runtime::planner_decision_key("ns", "m", "decode"));
  ASSERT_TRUE(kv.has_value());
  ASSERT_EQ(kv->size(), 1u);
  const auto v = boost::json::parse((*kv)[0].value).as_object();
  EXPECT_EQ(v.at("replicas").as_int64(), 4);
  EXPECT_EQ(v.at("pool").as_string(), "decode");
  EXPECT_EQ(v.at("model").as_string(), "m");
  EXPECT_EQ(v.at("reason").as_string(), "more load");
  // The decision lives under the planner's lease: gone when it stops.
  planner_side->shutdown();
  EXPECT_TRUE(w1.list(runtime::planner_decision_key("ns", "m", "decode"))->empty());
}

}  // namespace
}  // namespace turbine::planner
