// The event plane: memory, and NATS against a real nats-server (skipped without the binary).
#include "runtime/event_plane.h"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "runtime/component.h"
#include "runtime/wire.h"
#include "test_support/missing_dependency.h"

namespace turbine::runtime {
namespace {

using namespace std::chrono_literals;

struct Inbox {
  std::mutex mu;
  std::vector<std::string> got;
  MessageCallback cb() {
    return [this](std::string_view p) {
      std::lock_guard lock(mu);
      got.emplace_back(p);
    };
  }
  size_t size() {
    std::lock_guard lock(mu);
    return got.size();
  }
};

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

TEST(MemoryEventPlane, KvSinkPublishesOnTheSubjectAndUnsubscribeStops) {
  auto plane = std::make_shared<MemoryEventPlane>();
  Inbox inbox, other;
  auto sub = plane->subscribe(kv_events_subject("ns", "backend"), inbox.cb());
  auto sub2 = plane->subscribe("ns.backend.load", other.cb());
  ASSERT_TRUE(sub.has_value() && sub2.has_value());
  EventPlaneKvSink sink(plane, kv_events_subject("ns", "backend"), 77);
  kv::KvEvent e;
  e.event_id = 9;
  e.data = kv::BlockRemoved{{1, 2}};
  sink.publish(e);
  ASSERT_EQ(inbox.size(), 1u);
  EXPECT_EQ(other.size(), 0u);
  auto decoded = kv_event_from_json(inbox.got[0]);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->first, 77u);
  EXPECT_EQ(decoded->second, e);
  sub->reset();
  sink.publish(e);
  EXPECT_EQ(inbox.size(), 1u);
}

#ifdef TURBINE_HAVE_NATS
uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

pid_t start_nats(const std::string& bin, uint16_t port) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::freopen("/dev/null", "w", stdout);
    ::freopen("/dev/null", "w", stderr);
    const std::string p = std::to_string(port);
    ::execl(bin.c_str(), bin.c_str(), "-a", "127.0.0.1", "-p", p.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

void stop(pid_t pid) {
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

TEST(NatsEventPlane, PublishSubscribeAndReconnect) {
  const std::string bin = "/usr/sbin/nats-server";
  if (!std::filesystem::exists(bin)) TURBINE_MISSING_DEPENDENCY("nats-server is not installed");
  const uint16_t port = free_port();
  NatsOptions o;
  o.url = "nats://127.0.0.1:" + std::to_string(port);
  // Nothing listens yet: the plane still comes up and connects in the background.
  auto pub = make_nats_event_plane(o);
  ASSERT_TRUE(pub.has_value()) << pub.status().to_string();
  pid_t pid = start_nats(bin, port);
  auto sub_plane = make_nats_event_plane(o);
  ASSERT_TRUE(sub_plane.has_value());
  Inbox inbox;
  std::unique_ptr<Subscription> sub;
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = (*sub_plane)->subscribe("ns.backend.load", inbox.cb());
        if (!s) return false;
        sub = std::move(*s);
        return true;
      },
      5s));
  // Publish until the subscriber hears one (both connect in the background).
  ASSERT_TRUE(wait_until(
      [&] {
        (*pub)->publish("ns.backend.load", "one");
        return inbox.size() > 0;
      },
      10s));
  EXPECT_EQ(inbox.got[0], "one");

  // The server goes away and comes back: both sides reconnect by themselves.
  stop(pid);
  (*pub)->publish("ns.backend.load", "while down");  // never blocks
  pid = start_nats(bin, port);
  const size_t before = inbox.size();
  EXPECT_TRUE(wait_until(
      [&] {
        (*pub)->publish("ns.backend.load", "after");
        return inbox.size() > before;
      },
      15s));
  sub.reset();
  sub_plane->reset();
  pub->reset();
  stop(pid);
}
#endif

}  // namespace
}  // namespace turbine::runtime
