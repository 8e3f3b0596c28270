// A worker's status port: /live, /health and /metrics for Kubernetes probes and Prometheus
// (the request plane itself speaks the binary TCP protocol, not HTTP).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "engine/async_engine.h"
#include "http/server.h"
#include "metrics/metrics.h"

namespace turbine::cli {

struct WorkerStatusInfo {
  std::string ns, component, endpoint;
  uint64_t instance_id = 0;
  std::string model;
};

class WorkerStatusServer {
 public:
  // `ready` says whether the worker is registered and taking requests (false while draining).
  WorkerStatusServer(std::string host, uint16_t port, WorkerStatusInfo info,
                     std::shared_ptr<engine::AsyncEngine> engine, std::function<bool()> ready);
  ~WorkerStatusServer();
  Status start();
  uint16_t port() const;
  void stop();

 private:
  std::unique_ptr<metrics::FrontendMetrics> metrics_;  // outlives the server's handlers
  std::unique_ptr<http::Server> server_;
};

}  // namespace turbine::cli
