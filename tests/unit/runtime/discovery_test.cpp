#include "runtime/discovery.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>

namespace turbine::runtime {
namespace {

// Collects a watch's view of the store.
struct View {
  std::mutex mu;
  std::map<std::string, std::string> kv;
  std::vector<std::string> log;
  WatchCallback cb() {
    return [this](const WatchEvent& e) {
      std::lock_guard lock(mu);
      if (e.type == WatchEvent::Type::kAdded) {
        kv[e.key] = e.value;
        log.push_back("+" + e.key);
      } else {
        kv.erase(e.key);
        log.push_back("-" + e.key);
      }
    };
  }
};

TEST(MemoryDiscovery, WatchSeesSnapshotThenChangesAndLeaseEnd) {
  auto store = MemoryDiscovery::make_store();
  auto worker = std::make_unique<MemoryDiscovery>(store);
  MemoryDiscovery frontend(store);
  EXPECT_NE(worker->instance_id(), 0u);
  EXPECT_NE(worker->instance_id(), frontend.instance_id());
  ASSERT_TRUE(worker->register_key("v1/mdc/ns/a", "card-a").is_ok());
  View view;
  auto handle = frontend.watch("v1/mdc/ns/", view.cb());
  ASSERT_TRUE(handle.has_value());
  EXPECT_EQ(view.kv.at("v1/mdc/ns/a"), "card-a");
  ASSERT_TRUE(worker->register_key("v1/mdc/ns/b", "card-b").is_ok());
  ASSERT_TRUE(worker->register_key("v1/mdc/other/c", "x").is_ok());  // outside the prefix
  EXPECT_EQ(view.kv.size(), 2u);
  auto listed = frontend.list("v1/mdc/");
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(listed->size(), 3u);
  ASSERT_TRUE(worker->unregister_key("v1/mdc/ns/a").is_ok());
  EXPECT_EQ(view.kv.count("v1/mdc/ns/a"), 0u);
  worker.reset();  // the process ends: its lease goes, and everything under it
  EXPECT_TRUE(view.kv.empty());
  EXPECT_EQ(view.log, (std::vector<std::string>{"+v1/mdc/ns/a", "+v1/mdc/ns/b", "-v1/mdc/ns/a",
                                                "-v1/mdc/ns/b"}));
  handle->reset();
  MemoryDiscovery again(store);
  ASSERT_TRUE(again.register_key("v1/mdc/ns/z", "z").is_ok());
  EXPECT_TRUE(view.kv.empty());  // the watch was stopped
}

}  // namespace
}  // namespace turbine::runtime
