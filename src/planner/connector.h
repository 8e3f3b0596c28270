// Connectors carry the planner's decisions out: `local` starts and stops `turbine worker`
// processes on this host, `kubernetes` sets the replicas of the worker Deployments through the
// API server, `virtual` writes the decision to discovery for someone else to act on.
//
// Threads: a connector is created, polled, asked and told on one thread (the planner's loop).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/json/object.hpp>

#include "common/status.h"
#include "planner/config.h"
#include "planner/policy.h"

namespace turbine::runtime {
class Discovery;
}

namespace turbine::planner {

// Events for the decision log (worker started, ready, failed, exited, ...); the planner adds
// the time. May be empty.
using EventLog = std::function<void(boost::json::object event)>;

class Connector {
 public:
  virtual ~Connector() = default;
  // Bookkeeping between intervals (the planner calls it about twice a second).
  virtual void poll() {}
  virtual Result<PoolState> state(const ModelConfig& model, const PoolConfig& pool) = 0;
  // Asks for `replicas` workers in the pool. A blocked pool refuses to grow (kUnavailable).
  virtual Status scale(const ModelConfig& model, const PoolConfig& pool, int replicas,
                       const std::string& reason) = 0;
  // Ends what the connector runs (local: stops its workers, letting them drain). Idempotent.
  virtual void shutdown() {}
};

// Workers registered in discovery per (served model name, pool): model cards under component
// `prefill` count for the prefill pool, every other component for decode.
Result<std::map<std::pair<std::string, PoolRole>, int>> count_registered_workers(
    runtime::Discovery& discovery, const std::string& ns);

std::unique_ptr<Connector> make_local_connector(LocalConnectorConfig config, EventLog log);
// Resolves the API server, token, CA and namespace (in-cluster defaults); errors name the key.
Result<std::unique_ptr<Connector>> make_kubernetes_connector(KubernetesConnectorConfig config);
// `discovery` must outlive the connector.
std::unique_ptr<Connector> make_virtual_connector(std::shared_ptr<runtime::Discovery> discovery,
                                                  std::string ns);

// The Kubernetes API path of a Deployment's scale subresource.
std::string deployment_scale_path(const std::string& ns, const std::string& deployment);

}  // namespace turbine::planner
