#include "cli/gen_model_command.h"

#include <chrono>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "model/random_model.h"

namespace turbine::cli {
namespace {

struct GenModelOptions {
  std::string arch = "llama";
  std::string shape = "tiny";
  std::string dtype = "bf16";
  std::string quantization = "none";
  uint64_t seed = 0;
  std::string out;
  std::string tokenizer;
};

int gen_model(const GenModelOptions& g) {
  model::RandomModelOptions o;
  auto arch = model::parse_arch(g.arch);
  if (!arch) {
    spdlog::error("{}", arch.status().message());
    return 2;
  }
  o.arch = *arch;
  o.dtype = g.dtype == "f32"   ? model::DType::kF32
            : g.dtype == "f16" ? model::DType::kF16
                               : model::DType::kBF16;
  o.quantization = g.quantization == "fp8" ? model::Quantization::kFp8 : model::Quantization::kNone;
  o.shape = g.shape;
  o.seed = g.seed;
  o.tokenizer = g.tokenizer;
  const auto t0 = std::chrono::steady_clock::now();
  auto bytes = model::write_random_model(o, g.out);
  if (!bytes) {
    spdlog::error("gen-model: {}", bytes.status().message());
    return 2;
  }
  spdlog::info("wrote {} ({} {}, {:.2f} GB of {} weights{}) in {:.1f} s", g.out, g.arch, g.shape,
               static_cast<double>(*bytes) / 1e9, g.dtype,
               g.quantization == "fp8" ? ", linear layers FP8 (compressed-tensors)" : "",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

}  // namespace

void add_gen_model_command(CLI::App& app) {
  auto opts = std::make_shared<GenModelOptions>();
  auto* cmd = app.add_subcommand("gen-model", "Write a random-weight Hugging Face model folder");
  cmd->add_option("--arch", opts->arch, "Architecture")
      ->check(CLI::IsMember({"llama", "qwen2", "qwen3"}))
      ->capture_default_str();
  std::string shapes;
  for (const auto& s : model::model_shape_names()) shapes += (shapes.empty() ? "" : ", ") + s;
  cmd->add_option("--shape", opts->shape, "Hyper-parameters of: " + shapes)
      ->check(CLI::IsMember(model::model_shape_names()))
      ->capture_default_str();
  cmd->add_option("--dtype", opts->dtype, "Weight dtype")
      ->check(CLI::IsMember({"bf16", "f16", "f32"}))
      ->capture_default_str();
  cmd->add_option("--quantization", opts->quantization,
                  "fp8: the linear layers in FP8 E4M3 as compressed-tensors FP8-dynamic "
                  "checkpoints store them (per-channel weight_scale in --dtype, inputs per token, "
                  "lm_head ignored)")
      ->check(CLI::IsMember({"none", "fp8"}))
      ->capture_default_str();
  cmd->add_option("--seed", opts->seed, "Random seed (same seed, same bytes)")
      ->capture_default_str();
  cmd->add_option("--out", opts->out, "Output folder (created)")->required();
  cmd->add_option("--tokenizer", opts->tokenizer, "tokenizer.json to copy into the folder")
      ->check(CLI::ExistingFile);
  cmd->callback([opts] { std::exit(gen_model(*opts)); });
}

}  // namespace turbine::cli
