#include "semantic_hook/semantic_layer.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "semantic/metrics.h"
#include "semantic_hook/encoder_models.h"
#include "semantic_hook/semantic_hook.h"

namespace turbine::semantic_hook {

Result<std::unique_ptr<SemanticLayer>> SemanticLayer::create(const SemanticLayerOptions& options) {
  TURBINE_ASSIGN_OR_RETURN(semantic::SemanticConfig config,
                           semantic::load_semantic_config(options.config_path));
  TURBINE_ASSIGN_OR_RETURN(
      LoadedEncoderModels models,
      load_encoder_models(config.encoder_models, options.load_encoder, options.remote_encoders));
  semantic::StageOptions stage_options;
  stage_options.served_models = options.served_models;
  TURBINE_ASSIGN_OR_RETURN(
      std::unique_ptr<semantic::SemanticStage> stage,
      semantic::SemanticStage::create(config, std::move(models.models), std::move(stage_options)));
  std::unique_ptr<SemanticLayer> layer(new SemanticLayer());
  layer->stage_ = std::move(stage);
  layer->entries_ = std::move(models.entries);
  layer->poll_ = std::chrono::milliseconds(std::max(1, options.poll_ms));
  layer->remote_wait_ = std::chrono::seconds(config.encoder_models.remote_wait_seconds);
  layer->hook_ = std::make_shared<SemanticHook>(layer->stage_);
  layer->reloader_ = std::make_unique<semantic::ConfigReloader>(*layer->stage_, options.config_path,
                                                                options.poll_ms);
  std::string virtual_models;
  for (const std::string& v : config.virtual_models) {
    virtual_models += (virtual_models.empty() ? "" : ", ") + v;
  }
  spdlog::info("semantic: {} decisions, virtual models [{}], cache {}, from {}",
               config.decisions.size() + (config.default_decision ? 1 : 0), virtual_models,
               config.cache.enabled ? "on" : "off", options.config_path);
  return layer;
}

SemanticLayer::~SemanticLayer() {
  stop();
}

std::vector<std::pair<EncoderModelEntry, bool>> SemanticLayer::encoder_models() const {
  std::vector<std::pair<EncoderModelEntry, bool>> out;
  for (const EncoderModelEntry& e : entries_) out.emplace_back(e, e.source() != nullptr);
  return out;
}

std::string SemanticLayer::metrics_text() const {
  semantic::MetricsSnapshot s = stage_->metrics();
  for (const auto& [e, up] : encoder_models()) {
    s.encoder_models[{e.key.substr(e.key.find('.') + 1), e.model}] = up;
  }
  return semantic::prometheus_text(s);
}

void SemanticLayer::start() {
  reloader_->start();
  bool any_remote = false;
  for (const EncoderModelEntry& e : entries_) any_remote = any_remote || e.remote;
  if (any_remote && !watch_thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(watch_mu_);
      stopping_ = false;
    }
    watch_thread_ = std::thread([this] { watch_remote(); });
  }
}

void SemanticLayer::stop() {
  if (reloader_) reloader_->stop();
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    stopping_ = true;
  }
  watch_cv_.notify_all();
  if (watch_thread_.joinable()) watch_thread_.join();
}

void SemanticLayer::watch_remote() {
  struct State {
    bool up = false;
    bool ever = false;
    bool reported = false;
  };
  std::vector<State> states(entries_.size());
  const auto started = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(watch_mu_);
  while (!stopping_) {
    lock.unlock();
    for (size_t i = 0; i < entries_.size(); ++i) {
      const EncoderModelEntry& e = entries_[i];
      State& st = states[i];
      if (!e.remote) continue;
      std::shared_ptr<encoder::AsyncEncoder> enc = e.source();
      const bool up = enc != nullptr;
      if (up && !st.up) {
        const encoder::EncoderInfo info = enc->info();
        if (info.task != e.task) {
          spdlog::error(
              "semantic: {}: model '{}' is a {} model; this key needs a {} model, so its calls "
              "fail (counted in turbine_semantic_signal_errors_total)",
              e.key, e.model, encoder::task_name(info.task), encoder::task_name(e.task));
        } else {
          spdlog::info("semantic: {}: model '{}' is served by encoder workers", e.key, e.model);
        }
        if (e.task == encoder::EncoderTask::kEmbedding) stage_->warm_up();
        st.ever = true;
      } else if (!up && st.up) {
        spdlog::warn(
            "semantic: {}: model '{}' has no encoder worker any more; its signals count as "
            "absent until one serves it again",
            e.key, e.model);
      } else if (!up && !st.ever && !st.reported &&
                 std::chrono::steady_clock::now() - started >= remote_wait_) {
        st.reported = true;
        spdlog::error(
            "semantic: {} names model '{}', which no encoder worker has served in the {} s "
            "since start (encoder_models.remote_wait_seconds); its signals count as absent. "
            "Start `turbine worker --model <encoder folder> --served-model-name {}` in this "
            "namespace, or fix the name",
            e.key, e.model, remote_wait_.count(), e.model);
      }
      st.up = up;
    }
    lock.lock();
    watch_cv_.wait_for(lock, poll_, [this] { return stopping_; });
  }
}

}  // namespace turbine::semantic_hook
