// ModelWatcher: follows the instances and model cards of one namespace in discovery and keeps a
// model registry in step with them. It is the ONE path by which every server learns its models:
// `turbine frontend` (etcd, workers reached over the request plane) and `turbine run` (memory
// discovery, in-process workers) differ only in the Discovery and the InstanceConnector.
//
// A model card that appears connects to its instance (InstanceConnector) and adds it, as a
// worker, to the RoutedEngine of its model; the model's first worker creates that RoutedEngine
// and announces the model (ModelEvents::added). A card that disappears DRAINS its worker: no new
// request goes there, requests in flight finish there unless the connection breaks (then they
// migrate); the last worker of a model leaving announces its removal (ModelEvents::removed).
// Instance keys only feed instances() (/health).
//
// With `disaggregate` set, cards of the `prefill` component join their model's prefill pool
// instead (a RoutedEngine that may be empty) and the model is served through what
// `disaggregate` makes of its two pools (a DisaggEngine in `turbine frontend`,
// serving/disagg_composition.h).
//
// With use_router = false (`turbine run` with one worker) a model's only worker is announced
// as the model's engine itself, with no router in the path; a second worker of the same model
// is refused with an error in the log.
//
// What it announces is typed (ModelEngine): the engine to serve and the router in front of the
// model's workers, so that whoever composes more around it (disaggregation) needs no casts.
//
// Lives in serving/, not runtime/: it composes routers (router/) over what the runtime discovers;
// the runtime itself knows nothing of routing.
//
// Threads: discovery callbacks (one at a time per watch) and KV events from any thread. mu_
// guards the tables and is never held while calling the router, the connector or ModelEvents.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/async_engine.h"
#include "kv/protocol.h"
#include "router/routed_engine.h"
#include "runtime/component.h"
#include "runtime/discovery.h"
#include "runtime/model_card.h"
#include "serving/instance_connector.h"

namespace turbine::serving {

using runtime::ModelCard;
using runtime::ParsedKey;

// A model's engine as the watcher announces it.
struct ModelEngine {
  std::shared_ptr<engine::AsyncEngine> engine;  // what to serve (never null)
  // The router over the model's (decode) workers; null when the one worker is served directly
  // (use_router = false). With `disaggregate`, `engine` is what it made around this router.
  std::shared_ptr<router::RoutedEngine> router;
};

// What the watcher tells the model registry (the HTTP frontend). `added` may fail (tokenizer not
// loadable): the model is then not served and its workers are ignored until their cards change.
struct ModelEvents {
  std::function<Status(const ModelCard& card, ModelEngine engine)> added;
  std::function<void(const std::string& served_name)> removed;
};

struct ModelWatcherOptions {
  std::string ns = runtime::kDefaultNamespace;
  router::RouterOptions router;
  // Adjusts the router options of one model before its router is made (e.g. its metrics).
  std::function<void(const std::string& served_name, router::RouterOptions&)> per_model;
  bool use_router = true;
  // Disaggregated serving (with use_router): cards of the `prefill` component feed a per-model
  // prefill pool (a RoutedEngine, possibly empty) instead of the model's workers, and each
  // announced model is served through what this returns for (card, decode pool, prefill pool),
  // e.g. a disagg::DisaggEngine (serving/disagg_composition.h). Null: every card is a worker of
  // its model.
  std::function<std::shared_ptr<engine::AsyncEngine>(const ModelCard& card,
                                                     std::shared_ptr<router::RoutedEngine> decode,
                                                     std::shared_ptr<router::RoutedEngine> prefill)>
      disaggregate;
};

class ModelWatcher {
 public:
  ModelWatcher(ModelWatcherOptions options, runtime::Discovery& discovery,
               InstanceConnector& connector, ModelEvents events);
  ~ModelWatcher();  // stop()
  ModelWatcher(const ModelWatcher&) = delete;
  ModelWatcher& operator=(const ModelWatcher&) = delete;

  // Starts both watches; what discovery already holds is delivered before it returns (memory
  // discovery) or soon after (etcd).
  Status start();
  // Stops the watches (no callback runs after it returns). Idempotent.
  void stop();

  // KV events of a worker, for the router of its model (dropped for unknown workers).
  void on_kv_event(uint64_t instance_id, const kv::KvEvent& event);
  // The event plane's JSON form (runtime/wire.h).
  void on_kv_event_json(std::string_view payload);

  std::vector<ParsedKey> instances() const;      // for /health
  std::vector<std::string> model_names() const;  // served now
  std::vector<uint64_t> workers(const std::string& served_name) const;
  // The model's router (null without one, or for an unknown model).
  std::shared_ptr<router::RoutedEngine> router_of(const std::string& served_name) const;

 private:
  struct Worker {
    ModelCard card;
    bool prefill = false;  // a member of its model's prefill pool
  };
  struct PrefillPool {
    std::shared_ptr<router::RoutedEngine> routed;  // kept while the process runs
    std::set<uint64_t> workers;
  };
  struct Model {
    std::shared_ptr<router::RoutedEngine> routed;  // null with use_router = false
    std::set<uint64_t> workers;
    std::string kv_layout;  // its first worker's (ModelCard::kv_layout)
  };
  // Why a prefill worker with `card` cannot serve its model's decode workers (empty: it can).
  std::string unpairable_locked(const ModelCard& card) const;

  void on_card(const runtime::WatchEvent& e);
  void on_instance(const runtime::WatchEvent& e);
  void add(const ParsedKey& key, const ModelCard& card);
  void remove(uint64_t id);
  void add_prefill(const ParsedKey& key, const ModelCard& card);
  // The prefill pool of `served_name`, created empty on first use. Under mu_.
  std::shared_ptr<router::RoutedEngine> prefill_pool_locked(const std::string& served_name);

  const ModelWatcherOptions options_;
  runtime::Discovery& discovery_;
  InstanceConnector& connector_;
  const ModelEvents events_;
  std::unique_ptr<runtime::WatchHandle> instances_watch_;
  std::unique_ptr<runtime::WatchHandle> cards_watch_;
  mutable std::mutex mu_;
  std::map<uint64_t, Worker> workers_;
  std::map<std::string, Model> models_;
  std::map<std::string, PrefillPool> prefill_pools_;
  std::map<std::string, ParsedKey> instances_;
};

// Feeds an in-process worker's KV events to a watcher (tagged with the worker's instance id).
// The watcher must outlive the worker's last event.
class WatcherKvSink final : public kv::KvEventSink {
 public:
  WatcherKvSink(ModelWatcher* watcher, uint64_t instance_id)
      : watcher_(watcher), instance_id_(instance_id) {}
  void publish(kv::KvEvent event) override { watcher_->on_kv_event(instance_id_, event); }

 private:
  ModelWatcher* watcher_;
  uint64_t instance_id_;
};

}  // namespace turbine::serving
