// `turbine frontend`: serves the OpenAI API for every model whose workers it discovers.
//
// Discovery drives everything: a model card (v1/mdc/{ns}/...) that appears adds its worker, as
// a RemoteEngine, to the RoutedEngine of its model (created, with the tokenizer loaded from the
// card's location, when the model's first worker appears); a card that disappears removes the
// worker (its in-flight requests migrate) and, with the last one, the model (404 from then on).
// /health lists the instances under v1/instances/{ns}/. KV events from the event plane go to
// the RoutedEngine that holds the publishing worker.
#include "cli/frontend_command.h"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <spdlog/spdlog.h>

#include "cli/runtime_flags.h"
#include "cli/signals.h"
#include "frontend/frontend.h"
#include "model/model.h"
#include "router/routed_engine.h"
#include "runtime/component.h"
#include "runtime/io_threads.h"
#include "runtime/model_card.h"
#include "runtime/request_plane.h"
#include "runtime/wire.h"
#include "tokenizer/tokenizer.h"

namespace turbine::cli {
namespace {

struct FrontendCmdOptions {
  frontend::FrontendOptions http;
  std::string api_key;
  std::string router_mode = "kv";
  int migration_limit = 3;
  double overlap_weight = 1.0;
  double router_temperature = 0.0;
  int pool_size = 2;
  int request_plane_threads = 1;
  double shutdown_grace_s = 30.0;
  RuntimeFlags runtime;
};

// The models and workers this frontend knows, from discovery. Callbacks come from the discovery
// and event-plane threads; mu_ guards the maps (never held while calling the router's
// remove_worker, which may migrate requests and call back).
class ModelWatcher {
 public:
  ModelWatcher(frontend::Frontend& front, router::RouterOptions ropts, const FrontendCmdOptions& o)
      : front_(front), ropts_(ropts), opts_(o), io_(o.request_plane_threads) {}

  ~ModelWatcher() { io_.stop(); }

  void on_card(const runtime::WatchEvent& e) {
    auto key = runtime::parse_model_card_key(e.key);
    if (!key) return;
    const uint64_t id = key->instance_id;
    if (e.type == runtime::WatchEvent::Type::kRemoved) {
      remove(id);
      return;
    }
    auto card = runtime::model_card_from_json(e.value);
    if (!card) {
      spdlog::warn("discovery: ignoring model card {}: {}", e.key, card.status().message());
      return;
    }
    {
      std::lock_guard lock(mu_);
      auto it = workers_.find(id);
      if (it != workers_.end() && it->second.card == *card) return;  // re-put after a re-grant
    }
    remove(id);  // a changed card: start over with the new one
    add(id, *card);
  }

  void on_instance(const runtime::WatchEvent& e) {
    auto key = runtime::parse_instance_key(e.key);
    if (!key) return;
    std::lock_guard lock(mu_);
    if (e.type == runtime::WatchEvent::Type::kRemoved) {
      instances_.erase(e.key);
    } else {
      instances_[e.key] = {key->endpoint.ns, key->endpoint.component, key->endpoint.endpoint,
                           key->instance_id};
    }
  }

  void on_kv_event(std::string_view payload) {
    auto ev = runtime::kv_event_from_json(payload);
    if (!ev) return;
    std::shared_ptr<router::RoutedEngine> routed;
    {
      std::lock_guard lock(mu_);
      auto it = workers_.find(ev->first);
      if (it == workers_.end()) return;
      routed = it->second.routed;
    }
    routed->on_kv_event(ev->first, ev->second);
  }

  std::vector<frontend::HealthInstance> health() const {
    std::lock_guard lock(mu_);
    std::vector<frontend::HealthInstance> out;
    for (const auto& [k, v] : instances_) out.push_back(v);
    return out;
  }

 private:
  struct Worker {
    runtime::ModelCard card;
    std::shared_ptr<router::RoutedEngine> routed;
  };
  struct Model {
    std::shared_ptr<router::RoutedEngine> routed;
    std::set<uint64_t> workers;
  };

  void add(uint64_t id, const runtime::ModelCard& card) {
    runtime::RemoteEngineOptions ro;
    ro.address = card.address;
    ro.pool_size = opts_.pool_size;
    ro.max_context = static_cast<int>(card.context_length);
    ro.block_size = card.block_size;
    ro.num_slots = card.max_num_seqs;
    ro.kv_total_blocks = card.kv_total_blocks;
    auto remote = std::make_shared<runtime::RemoteEngine>(ro, io_.executor());

    std::shared_ptr<router::RoutedEngine> routed;
    bool fresh_model = false;
    {
      std::lock_guard lock(mu_);
      auto it = models_.find(card.served_name);
      if (it != models_.end()) routed = it->second.routed;
    }
    if (!routed) {
      routed = std::make_shared<router::RoutedEngine>(ropts_);
      fresh_model = true;
    }
    routed->add_worker({id, card.block_size, card.kv_total_blocks}, remote);
    if (fresh_model) {
      // The frontend needs the vocabulary and chat template, not the weights (mapped, not read).
      auto loaded = model::load_model(card.tokenizer_location);
      if (!loaded) {
        spdlog::error("discovery: cannot load the tokenizer of {} from {}: {}", card.served_name,
                      card.tokenizer_location, loaded.status().message());
        return;
      }
      std::shared_ptr<const model::Model> model = std::move(*loaded);
      auto tok = tokenizer::make_tokenizer(model->vocab());
      if (!tok) {
        spdlog::error("discovery: cannot build the tokenizer of {}: {}", card.served_name,
                      tok.status().message());
        return;
      }
      Status st =
          front_.add_model({card.served_name, std::move(model),
                            std::shared_ptr<tokenizer::Tokenizer>(std::move(*tok)), routed});
      if (!st.is_ok()) {
        spdlog::error("discovery: cannot serve {}: {}", card.served_name, st.message());
        return;
      }
      spdlog::info("model {} is served (first worker {})", card.served_name, runtime::hex_id(id));
    }
    std::lock_guard lock(mu_);
    Model& m = models_[card.served_name];
    m.routed = routed;
    m.workers.insert(id);
    workers_[id] = {card, routed};
    spdlog::info("worker {} joined {} at {} ({} workers)", runtime::hex_id(id), card.served_name,
                 card.address, m.workers.size());
  }

  void remove(uint64_t id) {
    std::shared_ptr<router::RoutedEngine> routed;
    std::string name;
    bool last = false;
    {
      std::lock_guard lock(mu_);
      auto it = workers_.find(id);
      if (it == workers_.end()) return;
      routed = it->second.routed;
      name = it->second.card.served_name;
      workers_.erase(it);
      auto m = models_.find(name);
      if (m != models_.end()) {
        m->second.workers.erase(id);
        if (m->second.workers.empty()) {
          models_.erase(m);
          last = true;
        }
      }
    }
    if (last) {
      front_.remove_model(name);
      spdlog::info("model {} is gone (its last worker {} left)", name, runtime::hex_id(id));
    }
    routed->remove_worker(id);
    spdlog::info("worker {} left {}", runtime::hex_id(id), name);
  }

  frontend::Frontend& front_;
  const router::RouterOptions ropts_;
  const FrontendCmdOptions& opts_;
  runtime::IoThreads io_;  // the RemoteEngines' connections
  mutable std::mutex mu_;
  std::map<uint64_t, Worker> workers_;
  std::map<std::string, Model> models_;
  std::map<std::string, frontend::HealthInstance> instances_;
};

int run_frontend(const FrontendCmdOptions& opts) {
  auto mode = router::parse_router_mode(opts.router_mode);
  if (!mode) {
    spdlog::error("{}", mode.status().message());
    return 2;
  }
  frontend::FrontendOptions http = opts.http;
  if (!opts.api_key.empty()) http.api_key = opts.api_key;
  auto front = frontend::Frontend::create(http);
  if (!front) {
    spdlog::error("{}", front.status().message());
    return 2;
  }
  auto discovery = opts.runtime.make_discovery();
  if (!discovery) {
    spdlog::error("discovery: {}", discovery.status().message());
    return 2;
  }
  auto plane = opts.runtime.make_event_plane();
  if (!plane) {
    spdlog::error("event plane: {}", plane.status().message());
    return 2;
  }
  router::RouterOptions ropts;
  ropts.mode = *mode;
  ropts.migration_limit = opts.migration_limit;
  ropts.overlap_weight = opts.overlap_weight;
  ropts.temperature = opts.router_temperature;
  ropts.use_kv_events = *plane != nullptr;
  if (Status st = ropts.validate(); !st.is_ok()) {
    spdlog::error("{}", st.message());
    return 2;
  }

  auto watcher = std::make_unique<ModelWatcher>(**front, ropts, opts);
  (*front)->set_health_source([w = watcher.get()] { return w->health(); });
  const std::string& ns = opts.runtime.ns;
  auto instances_watch =
      (*discovery)
          ->watch(runtime::instances_prefix(ns),
                  [w = watcher.get()](const runtime::WatchEvent& e) { w->on_instance(e); });
  auto cards_watch =
      (*discovery)
          ->watch(runtime::model_cards_prefix(ns),
                  [w = watcher.get()](const runtime::WatchEvent& e) { w->on_card(e); });
  if (!instances_watch || !cards_watch) {
    spdlog::error("discovery watch: {}",
                  (!instances_watch ? instances_watch.status() : cards_watch.status()).message());
    return 2;
  }
  std::unique_ptr<runtime::Subscription> kv_sub;
  if (*plane) {
    auto sub = (*plane)->subscribe(runtime::kv_events_subject(ns, runtime::kWorkerComponent),
                                   [w = watcher.get()](std::string_view p) { w->on_kv_event(p); });
    if (!sub) {
      spdlog::warn("event plane: {}; routing without KV events", sub.status().message());
    } else {
      kv_sub = std::move(*sub);
    }
  }
  if (Status st = (*front)->start(); !st.is_ok()) {
    spdlog::error("cannot start the HTTP server: {}", st.message());
    return 2;
  }
  spdlog::info("frontend for namespace {} serving on http://{}:{} (router {})", ns, http.host,
               (*front)->port(), opts.router_mode);

  const int sig = wait_for_shutdown_signal();
  spdlog::info("signal {} received: finishing in-flight requests (grace {:.0f} s)", sig,
               opts.shutdown_grace_s);
  (*front)->shutdown(std::chrono::milliseconds(static_cast<int64_t>(opts.shutdown_grace_s * 1000)));
  kv_sub.reset();
  cards_watch->reset();
  instances_watch->reset();
  (*discovery)->shutdown();
  watcher.reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

void add_frontend_command(CLI::App& app) {
  auto opts = std::make_shared<FrontendCmdOptions>();
  FrontendCmdOptions& f = *opts;
  auto* cmd = app.add_subcommand("frontend", "OpenAI API for the workers found in discovery");
  cmd->add_option("--host", f.http.host, "Address to listen on")
      ->envname("TURBINE_HOST")
      ->capture_default_str();
  cmd->add_option("--port", f.http.port, "Port to listen on (0: any free port)")
      ->envname("TURBINE_PORT")
      ->capture_default_str();
  cmd->add_option("--api-key", f.api_key, "Require `Authorization: Bearer KEY` on /v1/*")
      ->envname("TURBINE_API_KEY");
  cmd->add_option("--http-threads", f.http.http_threads, "HTTP event-loop threads")
      ->check(CLI::PositiveNumber)
      ->envname("TURBINE_HTTP_THREADS")
      ->capture_default_str();
  cmd->add_option("--router-mode", f.router_mode, "kv, round-robin, random or least-loaded")
      ->envname("TURBINE_ROUTER_MODE")
      ->capture_default_str();
  cmd->add_option("--migration-limit", f.migration_limit,
                  "Times a request may move to another worker when its worker is lost")
      ->check(CLI::NonNegativeNumber)
      ->envname("TURBINE_MIGRATION_LIMIT")
      ->capture_default_str();
  cmd->add_option("--kv-overlap-weight", f.overlap_weight, "Router: weight of cached blocks")
      ->envname("TURBINE_KV_OVERLAP_WEIGHT");
  cmd->add_option("--router-temperature", f.router_temperature,
                  "Router: softmax temperature over costs (0: cheapest)")
      ->envname("TURBINE_ROUTER_TEMPERATURE");
  cmd->add_option("--request-plane-pool", f.pool_size, "TCP connections per worker")
      ->check(CLI::PositiveNumber)
      ->envname("TURBINE_REQUEST_PLANE_POOL")
      ->capture_default_str();
  cmd->add_option("--request-plane-threads", f.request_plane_threads,
                  "Threads for worker connections")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--shutdown-grace", f.shutdown_grace_s,
                  "Seconds to let in-flight requests finish on SIGINT/SIGTERM")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  f.runtime.add_to(*cmd);
  cmd->callback([opts] { std::exit(run_frontend(*opts)); });
}

}  // namespace turbine::cli
