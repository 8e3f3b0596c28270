// Serving encoder models (issue 27): `turbine run` and `turbine worker` on a folder that
// encoder::is_encoder_folder() recognises (BERT, RoBERTa / XLM-R, ModernBERT; sentence-
// transformers folders, Qwen3-Embedding included) run it through an EncoderService instead of the
// generative engine:
//   run     the frontend serves it in-process on /v1/embeddings, /classify, /v1/rerank, /v1/score
//           (generative endpoints answer 400 saying so);
//   worker  a WorkerServer answers EncodeRequest frames with it, and the model card carries its
//           task, so `turbine frontend` routes the encoder endpoints there (EncoderWatcher,
//           least-loaded) and never generation.
// --device cuda runs BERT / RoBERTa / ModernBERT on the GPU (cuda/cuda_encoder_backend.h, BF16,
// or --dtype); decoder embedders run on the CPU backend.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/local_engine.h"
#include "cli/runtime_flags.h"
#include "common/status.h"
#include "encoder/encoder_service.h"
#include "frontend/frontend.h"
#include "runtime/component.h"
#include "runtime/encoder_watcher.h"
#include "runtime/remote_encoder.h"

namespace turbine::cli {

// The model at `path` with the backend `engine` asks for (device, dtype, threads; the token
// budget of a batch is max(--max-num-batched-tokens, 8192 on the CPU / 32768 on CUDA)).
Result<std::shared_ptr<encoder::EncoderService>> make_encoder_service(
    const std::filesystem::path& path, const LocalEngineOptions& engine);

struct EncoderRunArgs {
  std::filesystem::path path;
  frontend::FrontendOptions http;  // served_model_name set, HTTP flags applied
  LocalEngineOptions engine;
  double shutdown_grace_s = 30.0;
};
// `turbine run` for an encoder model: serves until SIGINT/SIGTERM; the exit code.
int run_encoder_server(const EncoderRunArgs& args);

struct EncoderWorkerArgs {
  std::filesystem::path path;
  std::string served_name;
  runtime::EndpointId endpoint;
  RuntimeFlags runtime;
  std::string host = "0.0.0.0";
  uint16_t port = 0;
  std::string advertise_host;
  int request_plane_threads = 1;
  int status_port = -1;
  double shutdown_grace_s = 30.0;
  LocalEngineOptions engine;
};
// `turbine worker` for an encoder model: registers its instance and card, serves until
// SIGINT/SIGTERM, then deregisters and drains; the exit code.
int run_encoder_worker(const EncoderWorkerArgs& args);

// `turbine frontend`'s encoder models: an EncoderWatcher over `discovery` that serves each
// encoder model its workers announce on `front` (a RoutedEncoder over RemoteEncoders; a lost
// worker's calls are retried on another up to `retry_limit` times).
class EncoderModels {
 public:
  static Result<std::unique_ptr<EncoderModels>> start(frontend::Frontend& front,
                                                      runtime::Discovery& discovery,
                                                      const RuntimeFlags& flags, int pool_size,
                                                      int n_threads, int retry_limit);
  ~EncoderModels();  // stops the watch, then the connections

  // The served encoder models (the semantic layer's `source: remote` models look them up).
  const runtime::EncoderWatcher& watcher() const { return *watcher_; }

 private:
  EncoderModels() = default;
  std::unique_ptr<runtime::TcpEncoderConnector> connector_;
  std::unique_ptr<runtime::EncoderWatcher> watcher_;
};

}  // namespace turbine::cli
