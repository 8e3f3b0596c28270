#include "cli/semantic_flags.h"

namespace turbine::cli {

void SemanticFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--semantic-config", config,
                 "YAML config of the semantic layer (virtual models such as MoM, routing "
                 "decisions, PII and jailbreak guards, semantic cache; docs/SEMANTIC.md); "
                 "reloaded on change and on SIGHUP. Off without it")
      ->envname("TURBINE_SEMANTIC_CONFIG");
}

Result<std::unique_ptr<semantic_hook::SemanticLayer>> SemanticFlags::attach(
    frontend::FrontendOptions& http, std::vector<std::string> served) const {
  if (config.empty()) return std::unique_ptr<semantic_hook::SemanticLayer>();
  semantic_hook::SemanticLayerOptions o;
  o.config_path = config;
  o.served_models = std::move(served);
  TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<semantic_hook::SemanticLayer> layer,
                           semantic_hook::SemanticLayer::create(o));
  http.request_hook = layer->hook();
  // /metrics: the frontend's own series, then what was there (the router's), then the stage's.
  semantic_hook::SemanticLayer* raw = layer.get();
  http.extra_metrics = [previous = std::move(http.extra_metrics), raw] {
    std::string text = previous ? previous() : std::string();
    return text + raw->metrics_text();
  };
  return layer;
}

}  // namespace turbine::cli
