// `turbine frontend`'s serving: every model whose workers it finds in discovery, on an HTTP
// frontend. A ModelWatcher (one KV-aware router per model; with prefill workers in discovery,
// a DisaggEngine over the model's decode and prefill pools) announces the models to the
// frontend's registry (FrontendModels: vocabulary and template from the card's tokenizer
// location, metadata only); KV events from the event plane (both components' subjects) go to the
// router holding the publishing worker; /health lists the instances discovery holds.
//
// Threads: start() and stop() on the main thread; the watcher's callbacks on discovery's
// threads; KV events on the event plane's subscription thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "disagg/disagg_engine.h"
#include "frontend/frontend.h"
#include "router/routed_engine.h"
#include "runtime/discovery.h"
#include "runtime/event_plane.h"
#include "serving/frontend_models.h"
#include "serving/instance_connector.h"
#include "serving/model_watcher.h"

namespace turbine::serving {

struct DiscoveredModelsOptions {
  std::string ns = runtime::kDefaultNamespace;
  router::RouterOptions router;  // every model's router (use_kv_events: only with an event plane)
  // Adjusts one model's router options before its router is made (e.g. its metrics observer).
  std::function<void(const std::string& served_name, router::RouterOptions&)> per_model;
  // Disaggregated serving: workers registered under the `prefill` component form each model's
  // prefill pool; while it is empty every request prefills on its decode worker.
  disagg::DisaggOptions disagg;
  // The request-plane token decode-side KV pulls from prefill workers present ("" for none).
  std::string kv_token;
};

class DiscoveredModels {
 public:
  // Sets `front`'s health source, starts watching and subscribes to KV events (`plane` may be
  // null: no KV events). Call before front.start(); `discovery`, `connector` and `front` must
  // outlive this object.
  static Result<std::unique_ptr<DiscoveredModels>> start(DiscoveredModelsOptions options,
                                                         runtime::Discovery& discovery,
                                                         InstanceConnector& connector,
                                                         std::shared_ptr<runtime::EventPlane> plane,
                                                         frontend::Frontend& front);
  ~DiscoveredModels();  // stop()
  // Drops the KV subscriptions and stops the watcher (no callback runs after it). Idempotent.
  void stop();

  ModelWatcher& watcher() { return *watcher_; }

 private:
  explicit DiscoveredModels(frontend::Frontend& front) : models_(front) {}
  FrontendModels models_;  // outlives the watcher that calls it
  std::unique_ptr<ModelWatcher> watcher_;
  std::vector<std::unique_ptr<runtime::Subscription>> kv_subs_;
};

}  // namespace turbine::serving
