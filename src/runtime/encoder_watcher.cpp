#include "runtime/encoder_watcher.h"

#include <spdlog/spdlog.h>

#include "runtime/remote_encoder.h"

namespace turbine::runtime {

EncoderWatcher::EncoderWatcher(std::string ns, Discovery& discovery, EncoderConnectFn connect,
                               EncoderModelEvents events, int retry_limit)
    : ns_(std::move(ns)),
      discovery_(discovery),
      connect_(std::move(connect)),
      events_(std::move(events)),
      retry_limit_(retry_limit) {}

EncoderWatcher::~EncoderWatcher() {
  stop();
}

Status EncoderWatcher::start() {
  TURBINE_ASSIGN_OR_RETURN(watch_, discovery_.watch(model_cards_prefix(ns_),
                                                    [this](const WatchEvent& e) { on_card(e); }));
  return Status::ok();
}

void EncoderWatcher::stop() {
  watch_.reset();
}

void EncoderWatcher::on_card(const WatchEvent& e) {
  auto key = parse_model_card_key(e.key);
  if (!key) return;
  const uint64_t id = key->instance_id;
  if (e.type == WatchEvent::Type::kRemoved) {
    remove(id);
    return;
  }
  auto card = model_card_from_json(e.value);
  if (!card.has_value() || !card->is_encoder()) {
    remove(id);  // not (or no longer) an encoder card: ModelWatcher's, or malformed
    return;
  }
  {
    std::lock_guard lock(mu_);
    auto it = workers_.find(id);
    if (it != workers_.end() && it->second == *card) return;  // re-put after a re-grant
  }
  remove(id);
  add(*key, *card);
}

void EncoderWatcher::add(const ParsedKey& key, const ModelCard& card) {
  const uint64_t id = key.instance_id;
  auto enc = connect_(key, card);
  if (!enc.has_value()) {
    spdlog::error("discovery: cannot reach encoder worker {} of {}: {}", hex_id(id),
                  card.served_name, enc.status().message());
    return;
  }
  std::shared_ptr<encoder::RoutedEncoder> routed;
  {
    std::lock_guard lock(mu_);
    if (auto it = models_.find(card.served_name); it != models_.end()) routed = it->second;
  }
  const bool first = routed == nullptr;
  if (first) routed = std::make_shared<encoder::RoutedEncoder>(card.served_name, retry_limit_);
  routed->add_worker(id, *enc, encoder_info(card));
  if (first) {
    // Calls are serialised: one watch delivers every card event.
    if (Status st = events_.added(card, routed); !st.is_ok()) {
      spdlog::error("discovery: cannot serve {}: {}", card.served_name, st.message());
      return;
    }
    spdlog::info("encoder model {} ({}) is served (first worker {})", card.served_name, card.task,
                 hex_id(id));
  }
  std::lock_guard lock(mu_);
  models_[card.served_name] = routed;
  workers_[id] = card;
  spdlog::info("encoder worker {} joined {} at {} ({} workers)", hex_id(id), card.served_name,
               card.address, routed->n_workers());
}

void EncoderWatcher::remove(uint64_t id) {
  std::shared_ptr<encoder::RoutedEncoder> routed;
  std::string name;
  bool last = false;
  {
    std::lock_guard lock(mu_);
    auto it = workers_.find(id);
    if (it == workers_.end()) return;
    name = it->second.served_name;
    workers_.erase(it);
    if (auto m = models_.find(name); m != models_.end()) {
      routed = m->second;
      routed->remove_worker(id);
      if (routed->n_workers() == 0) {
        models_.erase(m);
        last = true;
      }
    }
  }
  if (last) {
    events_.removed(name);
    spdlog::info("encoder model {} is gone (its last worker {} left)", name, hex_id(id));
  }
  spdlog::info("encoder worker {} left {}", hex_id(id), name);
}

std::vector<std::string> EncoderWatcher::model_names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, m] : models_) out.push_back(name);
  return out;
}

std::vector<uint64_t> EncoderWatcher::workers(const std::string& served_name) const {
  std::lock_guard lock(mu_);
  auto it = models_.find(served_name);
  if (it == models_.end()) return {};
  return it->second->workers();
}

std::shared_ptr<encoder::RoutedEncoder> EncoderWatcher::router_of(
    const std::string& served_name) const {
  std::lock_guard lock(mu_);
  auto it = models_.find(served_name);
  return it == models_.end() ? nullptr : it->second;
}

}  // namespace turbine::runtime
