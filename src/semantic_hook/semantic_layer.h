// SemanticLayer: what `--semantic-config FILE` turns on, assembled for the CLI: the config file
// loaded and validated, the encoder models it names loaded in-process, the SemanticStage, its
// ConfigReloader (file polling and SIGHUP), the frontend's RequestHook, and the stage's metrics
// in Prometheus text for the frontend's /metrics.
//
// Thread ownership: create() runs on the main thread; the reloader's poll thread starts with
// start() and is joined by stop() / the destructor. request_reload() is async-signal-safe (an
// atomic store), so a SIGHUP handler may call it. hook() and metrics_text() are safe from any
// thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "frontend/request_hook.h"
#include "semantic/reloader.h"
#include "semantic/stage.h"
#include "semantic_hook/encoder_models.h"

namespace turbine::semantic_hook {

struct SemanticLayerOptions {
  std::string config_path;
  // The names the frontend serves, when known at start (`turbine run`): a config naming any
  // other model refuses to start. Empty (`turbine frontend`, models come from discovery): not
  // checked; a decision for a model nobody serves answers 404 model_not_found.
  std::vector<std::string> served_models;
  int poll_ms = 1000;  // how often the file is checked for changes
  // How encoder_models folders are loaded; empty: the CPU backend (encoder_models.threads).
  EncoderLoader load_encoder;
};

class SemanticLayer {
 public:
  // Errors name the config key at fault (invalid_argument, field() = the key path).
  static Result<std::unique_ptr<SemanticLayer>> create(const SemanticLayerOptions& options);
  ~SemanticLayer();
  SemanticLayer(const SemanticLayer&) = delete;
  SemanticLayer& operator=(const SemanticLayer&) = delete;

  std::shared_ptr<frontend::RequestHook> hook() const { return hook_; }
  semantic::SemanticStage& stage() { return *stage_; }
  // turbine_semantic_* series (semantic/metrics.h), Prometheus text.
  std::string metrics_text() const;

  void start();  // starts polling the file
  void stop();
  void request_reload() { reloader_->request_reload(); }
  semantic::ConfigReloader& reloader() { return *reloader_; }

 private:
  SemanticLayer() = default;
  std::shared_ptr<semantic::SemanticStage> stage_;
  std::shared_ptr<frontend::RequestHook> hook_;
  std::unique_ptr<semantic::ConfigReloader> reloader_;
};

}  // namespace turbine::semantic_hook
