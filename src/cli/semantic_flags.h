// `--semantic-config FILE` for `turbine run` and `turbine frontend`: the semantic routing and
// guard layer (docs/SEMANTIC.md) as the frontend's request hook, its series on /metrics, and
// its config reloaded when the file changes or on SIGHUP.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/status.h"
#include "frontend/frontend.h"
#include "semantic_hook/semantic_layer.h"

namespace turbine::cli {

struct SemanticFlags {
  std::string config;
  // Where the encoder_models run: cpu (encoder_models.threads) or cuda (BERT / RoBERTa /
  // ModernBERT on the GPU, --semantic-encoder-dtype; a TURBINE_CUDA build).
  std::string encoder_device = "cpu";
  std::string encoder_dtype = "bf16";

  void add_to(CLI::App& cmd);
  // Without the flag: null. With it: the layer (a bad config is an error naming its key), set
  // as `http`'s request hook with its metrics appended to `http.extra_metrics`. `served`: the
  // names the frontend will serve, when known (see SemanticLayerOptions). `remote`: where
  // `source: remote` encoder models are found (`turbine frontend`); null: refused.
  Result<std::unique_ptr<semantic_hook::SemanticLayer>> attach(
      frontend::FrontendOptions& http, std::vector<std::string> served,
      std::shared_ptr<semantic_hook::RemoteEncoders> remote = nullptr) const;
};

}  // namespace turbine::cli
