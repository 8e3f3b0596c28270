// SemanticLayer: what `--semantic-config FILE` turns on, assembled for the CLI: the config file
// loaded and validated, the encoder models it names loaded in-process, the SemanticStage, its
// ConfigReloader (file polling and SIGHUP), the frontend's RequestHook, and the stage's metrics
// in Prometheus text for the frontend's /metrics.
//
// Models served by encoder workers (`source: remote`) are looked up through
// SemanticLayerOptions::remote_encoders on every call. A watch thread (started with start(), when
// the config names a remote model) checks them every poll_ms: it logs each one that appears
// (and an error when it does the wrong task), warms the stage up when the embedding model
// appears, logs each one that leaves, and logs an error for one no worker has served within
// encoder_models.remote_wait_seconds of start. /metrics carries
// turbine_semantic_encoder_model_available{key,model} for every configured model.
//
// Thread ownership: create() runs on the main thread; the reloader's poll thread and the watch
// thread start with start() and are joined by stop() / the destructor. request_reload() is
// async-signal-safe (an atomic store), so a SIGHUP handler may call it. hook() and
// metrics_text() are safe from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
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
  // Where `source: remote` models are found (`turbine frontend` binds it to its EncoderWatcher);
  // null: a config naming a remote model is refused.
  std::shared_ptr<RemoteEncoders> remote_encoders;
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

  void start();  // starts polling the file (and watching remote models)
  void stop();
  // Whether each configured model can be called now ((key, model) -> up).
  std::vector<std::pair<EncoderModelEntry, bool>> encoder_models() const;
  void request_reload() { reloader_->request_reload(); }
  semantic::ConfigReloader& reloader() { return *reloader_; }

 private:
  SemanticLayer() = default;
  void watch_remote();  // the watch thread's loop

  std::shared_ptr<semantic::SemanticStage> stage_;
  std::shared_ptr<frontend::RequestHook> hook_;
  std::unique_ptr<semantic::ConfigReloader> reloader_;
  std::vector<EncoderModelEntry> entries_;  // immutable after create()
  std::chrono::milliseconds poll_{1000};
  std::chrono::seconds remote_wait_{60};
  std::mutex watch_mu_;  // guards stopping_
  std::condition_variable watch_cv_;
  bool stopping_ = false;
  std::thread watch_thread_;
};

}  // namespace turbine::semantic_hook
