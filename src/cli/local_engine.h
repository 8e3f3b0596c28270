// Builds the in-process engine (backend + engine thread) from a loaded model; shared by the
// subcommands that run a model (`run`, and `worker` with the distributed runtime).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "common/status.h"
#include "engine/engine.h"
#include "kvtier/tier.h"
#include "model/model.h"

namespace turbine::cli {

struct LocalEngineOptions {
  int max_model_len = 0;  // 0: the model's context
  int max_num_seqs = 16;
  int max_num_batched_tokens = 2048;
  // Whether the two above were given on the command line: the mock engine keeps its own defaults
  // (an H100's 256 / 8192) unless they were.
  bool max_num_seqs_given = false;
  bool max_num_batched_tokens_given = false;
  // Latency targets (engine::EngineOptions, issue 29); 0: off.
  double target_itl_ms = 0;
  double target_ttft_ms = 0;
  // --scheduling-policy: fcfs, or priority (the `priority` request field; engine/scheduler.h).
  engine::SchedulingPolicy scheduling_policy = engine::SchedulingPolicy::kFcfs;
  int block_size = 16;
  int64_t kv_cache_memory = 0;  // bytes; 0: the backend's default budget
  bool enable_prefix_caching = true;
  int threads = 0;  // CPU backend threads; 0: all cores
  // Structured outputs (engine::EngineOptions, issue 19): threads that fill a step's token masks
  // (the engine thread included), and threads that compile cold constraints (0: the caller's).
  int structured_mask_threads = 0;  // 0: auto, min(4, cores / 2)
  int structured_compile_threads = 1;
  std::string device = "cpu";           // "cpu" or "cuda" (needs a TURBINE_CUDA build)
  std::string dtype = "bf16";           // CUDA weights/activations: "bf16", "f16" or "f32"
  double gpu_memory_utilization = 0.9;  // CUDA KV cache budget when kv_cache_memory is 0
  int tensor_parallel_size = 1;         // ranks one engine spans (GPUs, or CPU thread groups)
  int32_t eos_token_id = -1;
  std::shared_ptr<kv::KvEventSink> kv_event_sink;  // null: no KV events
  // Disaggregated serving (cli/disagg_run.h): the id stamped into prefill transfers, and the
  // transport imports are fetched with (null: imports prefill locally).
  uint64_t instance_id = 0;
  std::shared_ptr<engine::KvTransfer> kv_transfer;
  // Copy imported KV device to device when the source's pool can be mapped (CUDA IPC).
  bool kv_device_import = true;
  bool no_mmap = false;  // read the weights into memory instead of mapping them (--no-mmap)
  std::string quantization = "none";    // "fp8": linear weights to FP8 at load (--quantization)
  std::string kv_cache_dtype = "auto";  // "fp8": E4M3 KV cache (--kv-cache-dtype)
  // KV cache tiers below the device pool (--kv-offload-*, issue 24); off unless a budget is set.
  kvtier::TierOptions kv_offload;
  model::LoadOptions load_options() const {
    return {.mmap = !no_mmap,
            .quantization =
                quantization == "fp8" ? model::Quantization::kFp8 : model::Quantization::kNone};
  }
};

// Adds the engine flags shared by `turbine run` and `turbine worker` (context, batching, KV cache,
// device) to `cmd`, writing into `options`.
void add_engine_flags(CLI::App& cmd, LocalEngineOptions& options);

// The structured-outputs compiler of this model's vocabulary, shared in the process with the
// frontend's (structured/compiler_registry.h); null (logged) when the vocabulary cannot be used.
std::shared_ptr<structured::GrammarCompiler> grammar_compiler(const model::Model& model);

Result<std::unique_ptr<engine::Engine>> make_local_engine(const model::Model& model,
                                                          const LocalEngineOptions& options);

}  // namespace turbine::cli
