// EncoderWatcher: the encoder models of one namespace, from the model cards in discovery whose
// task is an encoder task (ModelCard::is_encoder; runtime::ModelWatcher ignores those).
//
// A card that appears is connected (EncoderConnectFn: a RemoteEncoder over the request plane in
// `turbine frontend`) and added, as a worker, to the RoutedEncoder of its served name
// (least-loaded, retries on lost workers); the model's first worker creates it and announces the
// model (EncoderModelEvents::added). A card that disappears removes its worker from routing
// (requests in flight there finish there); the last one announces the model's removal. Generation
// requests never reach these workers: the frontend serves them only on the encoder routes.
//
// Threads: discovery callbacks (one at a time). mu_ guards the tables and is never held while
// connecting or calling the events.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "encoder/routed_encoder.h"
#include "runtime/component.h"
#include "runtime/discovery.h"
#include "runtime/model_card.h"

namespace turbine::runtime {

using EncoderConnectFn = std::function<Result<std::shared_ptr<encoder::AsyncEncoder>>(
    const ParsedKey& instance, const ModelCard& card)>;

struct EncoderModelEvents {
  std::function<Status(const ModelCard& card, std::shared_ptr<encoder::AsyncEncoder> encoder)>
      added;
  std::function<void(const std::string& served_name)> removed;
};

class EncoderWatcher {
 public:
  EncoderWatcher(std::string ns, Discovery& discovery, EncoderConnectFn connect,
                 EncoderModelEvents events, int retry_limit = 3);
  ~EncoderWatcher();  // stop()
  EncoderWatcher(const EncoderWatcher&) = delete;
  EncoderWatcher& operator=(const EncoderWatcher&) = delete;

  Status start();
  void stop();  // no callback runs after it returns; idempotent

  std::vector<std::string> model_names() const;
  std::vector<uint64_t> workers(const std::string& served_name) const;
  std::shared_ptr<encoder::RoutedEncoder> router_of(const std::string& served_name) const;

 private:
  void on_card(const WatchEvent& e);
  void add(const ParsedKey& key, const ModelCard& card);
  void remove(uint64_t id);

  const std::string ns_;
  Discovery& discovery_;
  const EncoderConnectFn connect_;
  const EncoderModelEvents events_;
  const int retry_limit_;
  std::unique_ptr<WatchHandle> watch_;
  mutable std::mutex mu_;
  std::map<uint64_t, ModelCard> workers_;  // instance id -> its card
  std::map<std::string, std::shared_ptr<encoder::RoutedEncoder>> models_;
};

}  // namespace turbine::runtime
