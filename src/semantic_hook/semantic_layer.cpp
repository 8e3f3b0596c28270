#include "semantic_hook/semantic_layer.h"

#include <spdlog/spdlog.h>

#include "semantic/metrics.h"
#include "semantic_hook/encoder_models.h"
#include "semantic_hook/semantic_hook.h"

namespace turbine::semantic_hook {

Result<std::unique_ptr<SemanticLayer>> SemanticLayer::create(const SemanticLayerOptions& options) {
  TURBINE_ASSIGN_OR_RETURN(semantic::SemanticConfig config,
                           semantic::load_semantic_config(options.config_path));
  TURBINE_ASSIGN_OR_RETURN(semantic::Models models,
                           load_encoder_models(config.encoder_models, options.load_encoder));
  semantic::StageOptions stage_options;
  stage_options.served_models = options.served_models;
  TURBINE_ASSIGN_OR_RETURN(
      std::unique_ptr<semantic::SemanticStage> stage,
      semantic::SemanticStage::create(config, std::move(models), std::move(stage_options)));
  std::unique_ptr<SemanticLayer> layer(new SemanticLayer());
  layer->stage_ = std::move(stage);
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

std::string SemanticLayer::metrics_text() const {
  return semantic::prometheus_text(stage_->metrics());
}

void SemanticLayer::start() {
  reloader_->start();
}

void SemanticLayer::stop() {
  if (reloader_) reloader_->stop();
}

}  // namespace turbine::semantic_hook
