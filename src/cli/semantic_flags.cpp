#include "cli/semantic_flags.h"

#include "cli/encoder_serving.h"
#include "cli/local_engine.h"

namespace turbine::cli {

void SemanticFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--semantic-config", config,
                 "YAML config of the semantic layer (virtual models such as MoM, routing "
                 "decisions, PII and jailbreak guards, semantic cache; docs/SEMANTIC.md); "
                 "reloaded on change and on SIGHUP. Off without it")
      ->envname("TURBINE_SEMANTIC_CONFIG");
  cmd.add_option("--semantic-encoder-device", encoder_device,
                 "Where the semantic config's encoder_models run: cpu or cuda (BERT, RoBERTa, "
                 "ModernBERT on the GPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd.add_option("--semantic-encoder-dtype", encoder_dtype,
                 "--semantic-encoder-device cuda: weights and activations, bf16, f16 or f32")
      ->check(CLI::IsMember({"bf16", "f16", "f32"}))
      ->capture_default_str();
}

Result<std::unique_ptr<semantic_hook::SemanticLayer>> SemanticFlags::attach(
    frontend::FrontendOptions& http, std::vector<std::string> served,
    std::shared_ptr<semantic_hook::RemoteEncoders> remote) const {
  if (config.empty()) return std::unique_ptr<semantic_hook::SemanticLayer>();
  semantic_hook::SemanticLayerOptions o;
  o.config_path = config;
  o.served_models = std::move(served);
  o.remote_encoders = std::move(remote);
  if (encoder_device != "cpu") {
    LocalEngineOptions engine;
    engine.device = encoder_device;
    engine.dtype = encoder_dtype;
    o.load_encoder = [engine](const std::filesystem::path& folder) {
      return make_encoder_service(folder, engine);
    };
  }
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
