#include "serving/discovered_models.h"

#include <spdlog/spdlog.h>

#include "runtime/component.h"
#include "runtime/kv_transfer_tcp.h"
#include "serving/disagg_composition.h"

namespace turbine::serving {
namespace {

std::shared_ptr<runtime::TcpKvTransfer> make_kv_transfer(const std::string& token) {
  runtime::TcpKvTransferOptions o;
  o.token = token;
  return std::make_shared<runtime::TcpKvTransfer>(o);
}

}  // namespace

Result<std::unique_ptr<DiscoveredModels>> DiscoveredModels::start(
    DiscoveredModelsOptions options, runtime::Discovery& discovery, InstanceConnector& connector,
    std::shared_ptr<runtime::EventPlane> plane, frontend::Frontend& front) {
  TURBINE_RETURN_IF_ERROR(options.router.validate());
  TURBINE_RETURN_IF_ERROR(options.disagg.validate());
  std::unique_ptr<DiscoveredModels> d(new DiscoveredModels(front));
  ModelWatcherOptions wopts;
  wopts.ns = options.ns;
  wopts.router = options.router;
  wopts.per_model = std::move(options.per_model);
  wopts.disaggregate =
      discovered_disaggregation(options.disagg, make_kv_transfer(options.kv_token));
  d->watcher_ = std::make_unique<ModelWatcher>(wopts, discovery, connector, d->models_.events());
  front.set_health_source([w = d->watcher_.get()] {
    std::vector<frontend::HealthInstance> out;
    for (const runtime::ParsedKey& k : w->instances())
      out.push_back({k.endpoint.ns, k.endpoint.component, k.endpoint.endpoint, k.instance_id});
    return out;
  });
  if (Status st = d->watcher_->start(); !st.is_ok())
    return Status{st.code(), "discovery watch: " + st.message()};
  for (const char* component : {runtime::kWorkerComponent, runtime::kPrefillComponent}) {
    if (!plane) break;
    auto sub =
        plane->subscribe(runtime::kv_events_subject(options.ns, component),
                         [w = d->watcher_.get()](std::string_view p) { w->on_kv_event_json(p); });
    if (!sub) {
      spdlog::warn("event plane: {}; routing without KV events", sub.status().message());
    } else {
      d->kv_subs_.push_back(std::move(*sub));
    }
  }
  return d;
}

DiscoveredModels::~DiscoveredModels() {
  stop();
}

void DiscoveredModels::stop() {
  kv_subs_.clear();
  if (watcher_) watcher_->stop();
}

}  // namespace turbine::serving
