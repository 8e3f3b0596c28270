// How a server reaches an instance it discovered: a RemoteEngine over TCP, a NATS client, or the
// engine itself in the same process (serving/connectors.h has the three).
#pragma once

#include <memory>

#include "common/status.h"
#include "engine/async_engine.h"
#include "runtime/component.h"
#include "runtime/model_card.h"

namespace turbine::serving {

class InstanceConnector {
 public:
  virtual ~InstanceConnector() = default;
  // `instance`: the endpoint and instance id from the card's key. Called on a discovery
  // callback thread (ModelWatcher), one call at a time per watcher.
  virtual Result<std::shared_ptr<engine::AsyncEngine>> connect(const runtime::ParsedKey& instance,
                                                               const runtime::ModelCard& card) = 0;
};

}  // namespace turbine::serving
