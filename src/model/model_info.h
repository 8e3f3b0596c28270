// What serving a model needs to know without its weights: the vocabulary and chat template
// (VocabSpec), the context length and the names. A frontend reads this from the worker's model
// location instead of mapping the checkpoint.
//
// load_model_info reads metadata only: a GGUF file's header and key/values (the tensor data is
// never touched), a Hugging Face folder's config.json, tokenizer_config.json and the location of
// its tokenizer.json (no safetensors are opened), a llama2.c checkpoint's 28-byte header and its
// tokenizer.bin. Errors are the full loaders' (same files, same fields). The result is a value:
// immutable once made, shareable across threads as `shared_ptr<const ModelInfo>`.
#pragma once

#include <filesystem>
#include <string>

#include "common/status.h"
#include "model/model.h"

namespace turbine::model {

struct ModelInfo {
  std::string name;            // as Model::name(): GGUF general.name, folder or file stem
  std::filesystem::path path;  // the file or folder it was read from
  std::string arch_name;       // as ModelConfig::arch_name
  int n_vocab = 0;             // rows of the embedding table
  int max_context = 0;         // the model's context length
  VocabSpec vocab;             // tokenizer and chat template
};

// GGUF file, Hugging Face folder (or its config.json) or llama2.c checkpoint, as load_model
// tells them apart.
Result<ModelInfo> load_model_info(const std::filesystem::path& path);

// The same facts of a model loaded already (`turbine run` has the weights anyway).
ModelInfo model_info(const Model& model);

}  // namespace turbine::model
