// ModelCard: what a worker publishes about the model it serves (v1/mdc/...), enough for a
// frontend to serve it: names, limits, the KV geometry the router needs, where the tokenizer is
// and where the request plane listens. Versioned JSON; unknown fields are ignored so newer
// workers can add some.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/kv_transfer.h"

namespace turbine::runtime {

struct ModelCard {
  static constexpr int kVersion = 1;
  int version = kVersion;
  std::string model_name;   // the model's own name (GGUF general.name, folder name)
  std::string served_name;  // what clients put in "model"
  int64_t context_length = 0;
  int block_size = 0;
  int64_t kv_total_blocks = 0;
  int max_num_seqs = 0;
  std::string tokenizer_location;  // the model path the worker loaded (frontend reads it)
  std::string address;             // host:port of the worker's TCP request plane
  // The engine's KV block layout for disaggregated serving (kv_layout_string of
  // engine::KvLayout; empty: cannot export/import KV). A prefill worker is paired with a model's
  // decode workers only when the two are equal. Optional in the JSON (older workers: empty).
  std::string kv_layout;
  // Encoder models (issue 27): the task ("embedding", "classification", "token_classification",
  // "score"; empty: a generative model), the embedding width, inputs per request and, for
  // classifiers, id2label in id order. Optional in the JSON. context_length is the longest input
  // in tokens; block_size is 1 and kv_total_blocks 0 (no KV cache).
  std::string task;
  int embedding_dim = 0;
  int64_t max_inputs = 0;
  std::vector<std::string> labels;
  bool is_encoder() const { return !task.empty(); }
  // Ranks the worker's engine spans (issue 22). Not part of kv_layout: a tensor-parallel backend
  // exports and imports KV in the whole model's layout (engine/tensor_parallel_backend.h), so
  // prefill and decode workers of different TP sizes pair and move blocks correctly. Optional in
  // the JSON (older workers: 1).
  int tensor_parallel_size = 1;
  bool operator==(const ModelCard&) const = default;
};

std::string to_json(const ModelCard& card);
// "dtype/block_size/layers/kv_heads/head_dim/bytes_per_block", e.g. "bf16/16/32/8/128/2097152";
// empty for a layout that cannot be exported.
std::string kv_layout_string(const engine::KvLayout& layout);
// InvalidArgument for malformed JSON, missing fields or a newer major version.
Result<ModelCard> model_card_from_json(std::string_view json);

}  // namespace turbine::runtime
