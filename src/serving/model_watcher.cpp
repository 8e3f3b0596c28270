#include "serving/model_watcher.h"

#include <spdlog/spdlog.h>

#include "runtime/wire.h"

namespace turbine::serving {

using runtime::hex_id;
using runtime::WatchEvent;

ModelWatcher::ModelWatcher(ModelWatcherOptions options, runtime::Discovery& discovery,
                           InstanceConnector& connector, ModelEvents events)
    : options_(std::move(options)),
      discovery_(discovery),
      connector_(connector),
      events_(std::move(events)) {}

ModelWatcher::~ModelWatcher() {
  stop();
}

Status ModelWatcher::start() {
  TURBINE_ASSIGN_OR_RETURN(instances_watch_,
                           discovery_.watch(runtime::instances_prefix(options_.ns),
                                            [this](const WatchEvent& e) { on_instance(e); }));
  TURBINE_ASSIGN_OR_RETURN(cards_watch_,
                           discovery_.watch(runtime::model_cards_prefix(options_.ns),
                                            [this](const WatchEvent& e) { on_card(e); }));
  return Status::ok();
}

void ModelWatcher::stop() {
  cards_watch_.reset();
  instances_watch_.reset();
  // The prefill pools outlive their models' engines (a model may go and come back while its
  // prefill workers stay); they end here.
  std::vector<std::shared_ptr<router::RoutedEngine>> pools;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, p] : prefill_pools_) {
      if (p.routed) pools.push_back(std::move(p.routed));
    }
    prefill_pools_.clear();
  }
  for (auto& p : pools) p->shutdown();
}

void ModelWatcher::on_instance(const WatchEvent& e) {
  auto key = runtime::parse_instance_key(e.key);
  if (!key) return;
  std::lock_guard lock(mu_);
  if (e.type == WatchEvent::Type::kRemoved) {
    instances_.erase(e.key);
  } else {
    instances_[e.key] = *key;
  }
}

void ModelWatcher::on_card(const WatchEvent& e) {
  auto key = runtime::parse_model_card_key(e.key);
  if (!key) return;
  const uint64_t id = key->instance_id;
  if (e.type == WatchEvent::Type::kRemoved) {
    remove(id);
    return;
  }
  auto card = runtime::model_card_from_json(e.value);
  if (!card) {
    spdlog::warn("discovery: ignoring model card {}: {}", e.key, card.status().message());
    return;
  }
  if (card->is_encoder()) return;  // encoder models: runtime/encoder_watcher.h
  {
    std::lock_guard lock(mu_);
    auto it = workers_.find(id);
    if (it != workers_.end() && it->second.card == *card) return;  // re-put after a re-grant
  }
  remove(id);  // a changed card: start over with the new one
  add(*key, *card);
}

std::shared_ptr<router::RoutedEngine> ModelWatcher::prefill_pool_locked(
    const std::string& served_name) {
  PrefillPool& p = prefill_pools_[served_name];
  if (!p.routed) p.routed = std::make_shared<router::RoutedEngine>(options_.router);
  return p.routed;
}

std::string ModelWatcher::unpairable_locked(const ModelCard& card) const {
  auto m = models_.find(card.served_name);
  if (m == models_.end() || m->second.kv_layout.empty() || card.kv_layout.empty() ||
      m->second.kv_layout == card.kv_layout)
    return {};
  return "its KV layout " + card.kv_layout + " differs from the decode workers' " +
         m->second.kv_layout;
}

void ModelWatcher::add_prefill(const ParsedKey& key, const ModelCard& card) {
  const uint64_t id = key.instance_id;
  {
    // Workers whose KV blocks the decode side cannot read are never paired with it.
    std::lock_guard lock(mu_);
    if (std::string why = unpairable_locked(card); !why.empty()) {
      spdlog::error("discovery: prefill worker {} of {} is not used: {}", hex_id(id),
                    card.served_name, why);
      return;
    }
  }
  auto engine = connector_.connect(key, card);
  if (!engine) {
    spdlog::error("discovery: cannot reach prefill worker {} of {}: {}", hex_id(id),
                  card.served_name, engine.status().message());
    return;
  }
  std::shared_ptr<router::RoutedEngine> pool;
  {
    std::lock_guard lock(mu_);
    pool = prefill_pool_locked(card.served_name);
  }
  pool->add_worker({id, card.block_size, card.kv_total_blocks}, *engine);
  std::lock_guard lock(mu_);
  PrefillPool& p = prefill_pools_[card.served_name];
  p.workers.insert(id);
  workers_[id] = {card, true};
  spdlog::info("prefill worker {} joined {} at {} ({} prefill workers)", hex_id(id),
               card.served_name, card.address, p.workers.size());
}

void ModelWatcher::add(const ParsedKey& key, const ModelCard& card) {
  const uint64_t id = key.instance_id;
  if (options_.use_router && options_.disaggregate &&
      key.endpoint.component == runtime::kPrefillComponent) {
    add_prefill(key, card);
    return;
  }
  auto engine = connector_.connect(key, card);
  if (!engine) {
    spdlog::error("discovery: cannot reach worker {} of {}: {}", hex_id(id), card.served_name,
                  engine.status().message());
    return;
  }
  const router::WorkerInfo info{id, card.block_size, card.kv_total_blocks};
  std::shared_ptr<router::RoutedEngine> routed;
  bool known = false;
  {
    std::lock_guard lock(mu_);
    auto it = models_.find(card.served_name);
    if (it != models_.end()) {
      known = true;
      routed = it->second.routed;
    }
  }
  if (known && !routed) {
    spdlog::error("discovery: {} already has its one worker; worker {} is ignored",
                  card.served_name, hex_id(id));
    return;
  }
  if (known) {
    routed->add_worker(info, *engine);
  } else {
    ModelEngine served{*engine, nullptr};
    if (options_.use_router) {
      router::RouterOptions ro = options_.router;
      if (options_.per_model) options_.per_model(card.served_name, ro);
      routed = std::make_shared<router::RoutedEngine>(ro);
      routed->add_worker(info, *engine);
      served = {routed, routed};
      if (options_.disaggregate) {
        std::shared_ptr<router::RoutedEngine> prefill;
        {
          std::lock_guard lock(mu_);
          prefill = prefill_pool_locked(card.served_name);
        }
        served.engine = options_.disaggregate(card, routed, std::move(prefill));
      }
    }
    // Calls (announcing the model) are serialised: one watch delivers every card event.
    if (Status st = events_.added(card, served); !st.is_ok()) {
      spdlog::error("discovery: cannot serve {}: {}", card.served_name, st.message());
      if (routed) routed->shutdown();
      return;
    }
    spdlog::info("model {} is served (first worker {})", card.served_name, hex_id(id));
  }
  std::vector<uint64_t> unpaired;
  std::shared_ptr<router::RoutedEngine> pool;
  {
    std::lock_guard lock(mu_);
    Model& m = models_[card.served_name];
    m.routed = routed;
    m.workers.insert(id);
    if (m.kv_layout.empty()) m.kv_layout = card.kv_layout;
    workers_[id] = {card};
    spdlog::info("worker {} joined {} at {} ({} workers)", hex_id(id), card.served_name,
                 card.address, m.workers.size());
    // Prefill workers that came before the model's decode workers and cannot serve them leave
    // the pool.
    if (auto p = prefill_pools_.find(card.served_name); p != prefill_pools_.end()) {
      for (auto it = p->second.workers.begin(); it != p->second.workers.end();) {
        auto w = workers_.find(*it);
        std::string why = w == workers_.end() ? std::string() : unpairable_locked(w->second.card);
        if (why.empty()) {
          ++it;
          continue;
        }
        spdlog::error("discovery: prefill worker {} of {} is not used: {}", hex_id(*it),
                      card.served_name, why);
        unpaired.push_back(*it);
        workers_.erase(w);
        it = p->second.workers.erase(it);
      }
      pool = p->second.routed;
    }
  }
  for (uint64_t u : unpaired) pool->drain_worker(u);
}

void ModelWatcher::remove(uint64_t id) {
  std::shared_ptr<router::RoutedEngine> routed;
  std::string name;
  bool prefill = false;
  bool last = false;
  {
    std::lock_guard lock(mu_);
    auto it = workers_.find(id);
    if (it == workers_.end()) return;
    name = it->second.card.served_name;
    prefill = it->second.prefill;
    workers_.erase(it);
    if (prefill) {
      PrefillPool& p = prefill_pools_[name];
      p.workers.erase(id);
      routed = p.routed;  // the pool stays (its model's DisaggEngine holds it), maybe empty
    } else if (auto m = models_.find(name); m != models_.end()) {
      routed = m->second.routed;
      m->second.workers.erase(id);
      if (m->second.workers.empty()) {
        models_.erase(m);
        last = true;
      }
    }
  }
  if (last) {
    events_.removed(name);
    spdlog::info("model {} is gone (its last worker {} left)", name, hex_id(id));
  }
  // Requests in flight there finish there (or migrate if its connection breaks); a prefill
  // worker's transfers in flight finish or fall back to prefill on the decode side.
  if (routed) routed->drain_worker(id);
  spdlog::info("{}worker {} left {}", prefill ? "prefill " : "", hex_id(id), name);
}

void ModelWatcher::on_kv_event(uint64_t instance_id, const kv::KvEvent& event) {
  std::shared_ptr<router::RoutedEngine> routed;
  {
    std::lock_guard lock(mu_);
    auto w = workers_.find(instance_id);
    if (w == workers_.end()) return;
    const std::string& name = w->second.card.served_name;
    if (w->second.prefill) {
      auto p = prefill_pools_.find(name);
      if (p != prefill_pools_.end()) routed = p->second.routed;
    } else if (auto m = models_.find(name); m != models_.end()) {
      routed = m->second.routed;
    }
  }
  if (routed) routed->on_kv_event(instance_id, event);
}

void ModelWatcher::on_kv_event_json(std::string_view payload) {
  auto ev = runtime::kv_event_from_json(payload);
  if (ev) on_kv_event(ev->first, ev->second);
}

std::vector<ParsedKey> ModelWatcher::instances() const {
  std::lock_guard lock(mu_);
  std::vector<ParsedKey> out;
  for (const auto& [k, v] : instances_) out.push_back(v);
  return out;
}

std::vector<std::string> ModelWatcher::model_names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, m] : models_) out.push_back(name);
  return out;
}

std::vector<uint64_t> ModelWatcher::workers(const std::string& served_name) const {
  std::lock_guard lock(mu_);
  auto it = models_.find(served_name);
  if (it == models_.end()) return {};
  return {it->second.workers.begin(), it->second.workers.end()};
}

std::shared_ptr<router::RoutedEngine> ModelWatcher::router_of(
    const std::string& served_name) const {
  std::lock_guard lock(mu_);
  auto it = models_.find(served_name);
  return it == models_.end() ? nullptr : it->second.routed;
}

}  // namespace turbine::serving
