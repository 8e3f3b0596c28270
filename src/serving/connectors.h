// InstanceConnectors (serving/instance_connector.h): how a server reaches a discovered instance.
//   TcpConnector        a RemoteEngine to the card's address (the distributed mode)
//   MessageConnector    a MessageRemoteEngine to the instance's request subject (NATS)
//   InProcessConnector  the instance's engine in this process, by instance id (`turbine run`)
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "runtime/event_plane.h"
#include "runtime/io_threads.h"
#include "runtime/request_plane.h"
#include "serving/instance_connector.h"

namespace turbine::serving {

using runtime::ModelCard;
using runtime::ParsedKey;

class TcpConnector final : public InstanceConnector {
 public:
  // `pool_size` connections per worker, served by `n_threads` threads of its own. `base`: the
  // options every RemoteEngine starts from (token, keep-alive); address and card fields are set.
  TcpConnector(int pool_size, int n_threads, runtime::RemoteEngineOptions base = {});
  ~TcpConnector() override;  // stops the threads: destroy after the engines stop being used
  Result<std::shared_ptr<engine::AsyncEngine>> connect(const ParsedKey& instance,
                                                       const ModelCard& card) override;

 private:
  const int pool_size_;
  const runtime::RemoteEngineOptions base_;
  runtime::IoThreads io_;
};

class MessageConnector final : public InstanceConnector {
 public:
  MessageConnector(std::shared_ptr<runtime::EventPlane> plane,
                   std::chrono::milliseconds silence_timeout)
      : plane_(std::move(plane)), silence_timeout_(silence_timeout) {}
  Result<std::shared_ptr<engine::AsyncEngine>> connect(const ParsedKey& instance,
                                                       const ModelCard& card) override;

 private:
  std::shared_ptr<runtime::EventPlane> plane_;
  std::chrono::milliseconds silence_timeout_;
};

// Engines of this process by instance id. connect() hands out a link to the engine that tracks
// the requests submitted through it, so that sever() can do what a broken connection does to a
// RemoteEngine: every open request ends at once with kUnavailable (which the router migrates)
// and later submits are refused. A link's shutdown() closes the link only: the engine belongs
// to whoever added it and is stopped by them.
class InProcessConnector final : public InstanceConnector {
 public:
  void add(uint64_t instance_id, std::shared_ptr<engine::AsyncEngine> engine);
  // The instance is lost: its links fail their open requests (kUnavailable) and refuse new ones;
  // the engine's copies of those requests are cancelled. The entry is removed.
  void sever(uint64_t instance_id);
  Result<std::shared_ptr<engine::AsyncEngine>> connect(const ParsedKey& instance,
                                                       const ModelCard& card) override;

  class Link;

 private:
  struct Entry {
    std::shared_ptr<engine::AsyncEngine> engine;
    std::vector<std::weak_ptr<Link>> links;
  };
  std::mutex mu_;
  std::map<uint64_t, Entry> entries_;
};

}  // namespace turbine::serving
