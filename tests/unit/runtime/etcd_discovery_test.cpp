// EtcdDiscovery against a real etcd on random loopback ports (skipped without the binary).
#include "runtime/etcd_discovery.h"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include <curl/curl.h>

#include "test_processes.h"
#include "test_support/missing_dependency.h"

namespace turbine::runtime {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_support::EtcdProcess;
using test_support::find_etcd;
using test_support::free_port;
using test_support::wait_until;

struct View {
  std::mutex mu;
  std::map<std::string, std::string> kv;
  int removed = 0;
  WatchCallback cb() {
    return [this](const WatchEvent& e) {
      std::lock_guard lock(mu);
      if (e.type == WatchEvent::Type::kAdded) {
        kv[e.key] = e.value;
      } else {
        kv.erase(e.key);
        removed++;
      }
    };
  }
  size_t size() {
    std::lock_guard lock(mu);
    return kv.size();
  }
  std::optional<std::string> get(const std::string& k) {
    std::lock_guard lock(mu);
    auto it = kv.find(k);
    if (it == kv.end()) return std::nullopt;
    return it->second;
  }
};

class EtcdDiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string bin = find_etcd();
    if (bin.empty())
      TURBINE_MISSING_DEPENDENCY("etcd is not installed (scripts/install-deps installs it)");
    etcd_ = std::make_unique<EtcdProcess>(bin);
    ASSERT_TRUE(etcd_->start()) << "etcd did not start";
  }
  std::unique_ptr<EtcdDiscovery> client(int ttl = 3) {
    EtcdOptions o;
    o.endpoints = parse_etcd_endpoints("127.0.0.1:1," + etcd_->url());  // first one is dead
    o.lease_ttl_s = ttl;
    o.request_timeout_ms = 1000;
    auto d = EtcdDiscovery::create(o);
    EXPECT_TRUE(d.has_value()) << d.status().to_string();
    return d ? std::move(*d) : nullptr;
  }
  std::unique_ptr<EtcdProcess> etcd_;
};

TEST_F(EtcdDiscoveryTest, RegisterListWatchAndRevoke) {
  auto worker = client();
  auto frontend = client();
  ASSERT_TRUE(worker && frontend);
  EXPECT_NE(worker->instance_id(), frontend->instance_id());
  ASSERT_TRUE(worker->register_key("v1/mdc/ns/backend/generate/1", "{\"a\":1}").is_ok());
  View view;
  auto watch = frontend->watch("v1/mdc/ns/", view.cb());
  ASSERT_TRUE(watch.has_value()) << watch.status().to_string();
  EXPECT_EQ(view.get("v1/mdc/ns/backend/generate/1"), "{\"a\":1}");  // the snapshot, at once
  ASSERT_TRUE(worker->register_key("v1/mdc/ns/backend/generate/2", "two").is_ok());
  ASSERT_TRUE(worker->register_key("v1/mdc/other/x", "outside").is_ok());
  EXPECT_TRUE(wait_until([&] { return view.size() == 2; }, 5s));
  auto listed = frontend->list("v1/mdc/");
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(listed->size(), 3u);
  ASSERT_TRUE(worker->unregister_key("v1/mdc/ns/backend/generate/2").is_ok());
  EXPECT_TRUE(wait_until([&] { return view.size() == 1; }, 5s));
  worker->shutdown();  // revokes the lease: everything it registered goes
  EXPECT_TRUE(wait_until([&] { return view.size() == 0; }, 5s));
  EXPECT_TRUE(frontend->list("v1/mdc/")->empty());
}

TEST_F(EtcdDiscoveryTest, KeysOutliveAnOutageAndComeBackAfterAFreshEtcd) {
  auto worker = client(2);
  auto frontend = client(2);
  ASSERT_TRUE(worker && frontend);
  ASSERT_TRUE(worker->register_key("v1/instances/ns/backend/generate/7", "w").is_ok());
  View view;
  auto watch = frontend->watch("v1/instances/ns/", view.cb());
  ASSERT_TRUE(watch.has_value());
  ASSERT_EQ(view.size(), 1u);

  // Same data dir: the lease survives the restart, keep-alive resumes, nothing is removed.
  etcd_->stop();
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(view.size(), 1u);  // serving goes on with what is known
  EXPECT_FALSE(frontend->list("v1/").has_value());
  ASSERT_TRUE(etcd_->start());
  std::this_thread::sleep_for(2500ms);
  EXPECT_EQ(view.size(), 1u);
  EXPECT_EQ(view.removed, 0);

  // A fresh etcd (data lost): the worker re-grants and registers again; the watch sees it.
  const uint64_t lease_before = worker->current_lease();
  etcd_->stop();
  etcd_->wipe();
  ASSERT_TRUE(etcd_->start());
  EXPECT_TRUE(wait_until(
      [&] {
        auto l = frontend->list("v1/instances/ns/");
        return l && l->size() == 1;
      },
      10s));
  EXPECT_NE(worker->current_lease(), lease_before);
  EXPECT_EQ(worker->instance_id(), lease_before);  // the instance id stays
  EXPECT_TRUE(
      wait_until([&] { return view.get("v1/instances/ns/backend/generate/7") == "w"; }, 5s));
  ASSERT_TRUE(worker->register_key("v1/instances/ns/backend/generate/8", "w8").is_ok());
  EXPECT_TRUE(wait_until([&] { return view.size() == 2; }, 5s));
  // The empty fresh etcd never made the watcher drop the worker's key.
  EXPECT_EQ(view.removed, 0);
  // A key that really goes away after an outage is removed once the deferral ran out.
  etcd_->stop();
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(etcd_->start());
  std::this_thread::sleep_for(1500ms);  // the watch re-listed (nothing missing yet)
  ASSERT_TRUE(worker->unregister_key("v1/instances/ns/backend/generate/8").is_ok());
  EXPECT_TRUE(wait_until([&] { return view.size() == 1; }, 8s));
  EXPECT_EQ(view.removed, 1);
}

TEST(EtcdOptions, EndpointsAndValidation) {
  EXPECT_EQ(parse_etcd_endpoints("a:1, http://b:2/,"),
            (std::vector<std::string>{"http://a:1", "http://b:2"}));
  EXPECT_EQ(parse_etcd_endpoints("https://x:2379,y:2379"),
            (std::vector<std::string>{"https://x:2379", "http://y:2379"}));
  EtcdOptions o;
  o.lease_ttl_s = 1;
  EXPECT_FALSE(o.validate().is_ok());
  o.lease_ttl_s = 10;
  o.username = "u";
  EXPECT_FALSE(o.validate().is_ok());
  o.password = "p";
  EXPECT_TRUE(o.validate().is_ok());
  EtcdOptions dead;
  dead.endpoints = {"http://127.0.0.1:1"};
  dead.request_timeout_ms = 500;
  auto d = EtcdDiscovery::create(dead);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace turbine::runtime
