#include "cli/local_engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "engine/backend.h"
#include "structured/compiler_registry.h"
#include "tokenizer/tokenizer.h"
#ifdef TURBINE_HAVE_CUDA
#include "cuda/cuda_backend.h"
#include "cuda/tensor_parallel.h"
#endif

namespace turbine::cli {
namespace {

Result<std::unique_ptr<engine::Backend>> make_backend(const model::Model& model,
                                                      const LocalEngineOptions& opts) {
  TURBINE_ASSIGN_OR_RETURN(const engine::KvCacheDtype kv_dtype,
                           engine::parse_kv_cache_dtype(opts.kv_cache_dtype));
  if (opts.device == "cpu") {
    engine::CpuBackendOptions bopts;
    bopts.n_threads = opts.threads;
    bopts.max_num_seqs = opts.max_num_seqs;
    bopts.max_context = opts.max_model_len;
    bopts.block_size = opts.block_size;
    bopts.kv_cache_memory_bytes = opts.kv_cache_memory;
    bopts.kv_cache_dtype = kv_dtype;
    bopts.tensor_parallel_size = opts.tensor_parallel_size;
    return engine::make_cpu_backend(model, bopts);
  }
  if (opts.device != "cuda")
    return invalid_argument("--device must be cpu or cuda, not '" + opts.device + "'", "device");
#ifdef TURBINE_HAVE_CUDA
  cuda::CudaBackendOptions copts;
  if (opts.dtype == "bf16") {
    copts.dtype = model::DType::kBF16;
  } else if (opts.dtype == "f16") {
    copts.dtype = model::DType::kF16;
  } else if (opts.dtype == "f32") {
    copts.dtype = model::DType::kF32;
  } else {
    return invalid_argument("--dtype must be bf16, f16 or f32", "dtype");
  }
  copts.max_context = opts.max_model_len;
  copts.block_size = opts.block_size;
  copts.max_num_seqs = opts.max_num_seqs;
  copts.max_num_batched_tokens = std::max(opts.max_num_batched_tokens, opts.max_num_seqs);
  copts.gpu_memory_utilization = opts.gpu_memory_utilization;
  copts.kv_cache_memory_bytes = opts.kv_cache_memory;
  copts.kv_cache_dtype = kv_dtype;
  if (opts.tensor_parallel_size > 1)
    return cuda::make_cuda_tp_backend(model, copts, opts.tensor_parallel_size);
  return cuda::make_cuda_backend(model, copts);
#else
  return unimplemented(
      "--device cuda: this turbine was built without CUDA (configure with -DTURBINE_CUDA=ON)",
      "device");
#endif
}

}  // namespace

void add_engine_flags(CLI::App& cmd, LocalEngineOptions& o) {
  cmd.add_option("--max-model-len", o.max_model_len, "Context length (default: the model's)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--max-num-seqs", o.max_num_seqs, "Sequences decoded together")
      ->check(CLI::PositiveNumber)
      ->each([&o](const std::string&) { o.max_num_seqs_given = true; })
      ->capture_default_str();
  cmd.add_option("--max-num-batched-tokens", o.max_num_batched_tokens,
                 "Tokens per forward step (chunked prefill budget)")
      ->check(CLI::PositiveNumber)
      ->each([&o](const std::string&) { o.max_num_batched_tokens_given = true; })
      ->capture_default_str();
  cmd.add_option("--target-itl-ms", o.target_itl_ms,
                 "Inter-token latency target: a step that decodes carries only the prefill that "
                 "the learned step-time model fits beside its decodes within it (0: off, the "
                 "fixed --max-num-batched-tokens)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--target-ttft-ms", o.target_ttft_ms,
                 "Time-to-first-token target: the queue is ordered by deadline; requests that "
                 "can no longer make it yield, within a bound (0: off, first come first served)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option_function<std::string>(
         "--scheduling-policy",
         [&o](const std::string& name) {
           // IsMember below has checked the name.
           if (auto p = engine::parse_scheduling_policy(name)) o.scheduling_policy = *p;
         },
         "fcfs: first come first served (a request's `priority` must be 0); priority: the queue "
         "is ordered by the requests' `priority` (lower first, then arrival) and KV preemption "
         "takes the lowest class's latest arrival first")
      ->check(CLI::IsMember({"fcfs", "priority"}))
      ->default_str("fcfs");
  cmd.add_option("--block-size", o.block_size, "Token positions per KV cache block")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd.add_option("--kv-cache-memory", o.kv_cache_memory,
                 "KV cache bytes (0: CPU: max-num-seqs full contexts, at most 2 GiB; CUDA: "
                 "--gpu-memory-utilization)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", o.enable_prefix_caching,
               "Reuse the KV of identical prompt prefixes (default: on)");
  cmd.add_option("--threads", o.threads, "CPU backend threads (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--structured-mask-threads", o.structured_mask_threads,
                 "Structured outputs: threads (the engine thread included) that fill one "
                 "step's token masks while the device computes the step (0: min(4, cores / 2))")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  cmd.add_option("--structured-compile-threads", o.structured_compile_threads,
                 "Structured outputs: threads that compile constraints not yet cached, off the "
                 "request-plane and HTTP threads (0: on the thread that submits the request)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  cmd.add_option("--device", o.device, "Backend: cpu, or cuda (TURBINE_CUDA builds)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd.add_option("--dtype", o.dtype, "CUDA weight and activation dtype")
      ->check(CLI::IsMember({"bf16", "f16", "f32"}))
      ->capture_default_str();
  cmd.add_option("--gpu-memory-utilization", o.gpu_memory_utilization,
                 "CUDA: share of GPU memory for weights, buffers and the KV cache (when "
                 "--kv-cache-memory is 0)")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  cmd.add_option("--tensor-parallel-size", o.tensor_parallel_size,
                 "Ranks one engine spans: GPUs (CUDA, through NCCL), or thread groups splitting "
                 "--threads (CPU)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_flag("--no-mmap", o.no_mmap,
               "Read the weights into memory instead of mapping them: the model file may then "
               "change on disk without affecting the server (costs load time and private RSS)")
      ->envname("TURBINE_NO_MMAP");
  cmd.add_option("--quantization", o.quantization,
                 "Weight quantization at load: fp8 makes every linear layer's weights FP8 E4M3 "
                 "with per-channel scales and quantizes their inputs per token (checkpoints "
                 "already in FP8 load as they are)")
      ->check(CLI::IsMember({"none", "fp8"}))
      ->capture_default_str();
  cmd.add_option("--kv-cache-dtype", o.kv_cache_dtype,
                 "KV cache storage: auto (the compute dtype) or fp8 (E4M3, one scale per layer "
                 "for K and for V: the checkpoint's, else 1); fp8 holds twice the tokens of bf16")
      ->check(CLI::IsMember({"auto", "fp8", "fp8_e4m3"}))
      ->capture_default_str();
  cmd.add_flag("--kv-device-import,!--no-kv-device-import", o.kv_device_import,
               "Disaggregated decode: copy a prefill worker's KV blocks GPU to GPU (CUDA IPC) "
               "when it is on this host; otherwise, or with --no-kv-device-import, its bytes "
               "go over TCP (default: on)");
  cmd.add_option("--kv-offload-host-bytes", o.kv_offload.host_bytes,
                 "KV tiers: bytes of host memory (pinned on CUDA) that keep KV blocks evicted "
                 "from the device pool, for prompts that come back (0: no host tier)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--kv-offload-disk-path", o.kv_offload.disk_path,
                 "KV tiers: directory of the disk tier's block file (created; removed at exit); "
                 "written and read with io_uring and O_DIRECT where available");
  cmd.add_option("--kv-offload-disk-bytes", o.kv_offload.disk_bytes,
                 "KV tiers: the disk tier's budget in bytes (reserved at start)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--kv-offload-disk-min-hits", o.kv_offload.disk_min_hits,
                 "KV tiers: a block is written to disk only once it was seen this many times "
                 "(spares the SSD from blocks used once; 1: every block leaving the host tier)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_option("--kv-offload-inflight-bytes", o.kv_offload.offload_inflight_bytes,
                 "KV tiers: budget of device->host offload copies in flight (pinned staging); "
                 "blocks evicted beyond it are not offloaded (counted as dropped)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_flag("--kv-offload-all-completed", o.kv_offload.offload_all_completed,
               "KV tiers: copy every completed KV block to the tiers once, as soon as it is "
               "computed (write-through), not only when the device evicts it (write-back, the "
               "default); blocks a tier holds already are not copied again");
}

std::shared_ptr<structured::GrammarCompiler> grammar_compiler(const model::Model& model) {
  auto tok = tokenizer::make_tokenizer(model.vocab());
  if (!tok.has_value()) {
    spdlog::warn("structured outputs are off: {}", tok.status().message());
    return nullptr;
  }
  auto c = structured::shared_compiler_for_model(**tok, model.config().n_vocab);
  if (!c.has_value()) {
    spdlog::warn("structured outputs are off: {}", c.status().message());
    return nullptr;
  }
  return std::move(*c);
}

Result<std::unique_ptr<engine::Engine>> make_local_engine(const model::Model& model,
                                                          const LocalEngineOptions& opts) {
  TURBINE_ASSIGN_OR_RETURN(auto backend, make_backend(model, opts));
  spdlog::info("{} backend; KV cache: {} blocks of {} positions, prefix caching {}",
               backend->name(), backend->num_blocks(), backend->block_size(),
               opts.enable_prefix_caching ? "on" : "off");
  engine::EngineOptions eopts;
  eopts.max_num_batched_tokens = opts.max_num_batched_tokens;
  eopts.max_num_seqs = opts.max_num_seqs;
  eopts.target_itl_ms = opts.target_itl_ms;
  eopts.target_ttft_ms = opts.target_ttft_ms;
  eopts.scheduling_policy = opts.scheduling_policy;
  eopts.enable_prefix_caching = opts.enable_prefix_caching;
  eopts.kv_event_sink = opts.kv_event_sink;
  eopts.instance_id = opts.instance_id;
  eopts.kv_transfer = opts.kv_transfer;
  eopts.kv_device_import = opts.kv_device_import;
  if (opts.eos_token_id >= 0) eopts.eos_token_ids.push_back(opts.eos_token_id);
  eopts.grammar_compiler = grammar_compiler(model);
  eopts.mask_threads = opts.structured_mask_threads;
  eopts.compile_threads = opts.structured_compile_threads;
  if (opts.kv_offload.enabled()) {
    const engine::KvLayout layout = backend->kv_layout();
    if (!layout.exportable() || layout.simulated()) {
      return invalid_argument("--kv-offload-*: the " + std::string(backend->name()) +
                                  " backend does not export KV blocks",
                              "kv_offload_host_bytes");
    }
    TURBINE_ASSIGN_OR_RETURN(auto tiers,
                             kvtier::TierManager::create(opts.kv_offload, layout.bytes_per_block,
                                                         backend->host_memory()));
    spdlog::info("KV tiers: host {} bytes, disk {} ({} bytes, min hits {}), offload {}",
                 opts.kv_offload.host_bytes,
                 opts.kv_offload.disk_path.empty() ? "off" : opts.kv_offload.disk_path,
                 opts.kv_offload.disk_bytes, opts.kv_offload.disk_min_hits,
                 opts.kv_offload.offload_all_completed ? "every completed block" : "on eviction");
    eopts.kv_tiers = std::move(tiers);
  }
  TURBINE_RETURN_IF_ERROR(eopts.validate());
  return std::make_unique<engine::Engine>(std::move(backend), model.config().n_vocab, eopts);
}

}  // namespace turbine::cli
