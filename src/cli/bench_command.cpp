#include "cli/bench_command.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "bench/bench.h"

namespace turbine::cli {
namespace {

struct BenchArgs {
  bench::BenchOptions options;
  std::string endpoint = "chat";
  std::string request_rate;
  std::string sweep;
  std::string slo;
  std::string dataset_format = "auto";
  bool no_ignore_eos = false;
  bool no_progress = false;
};

int run(BenchArgs& a) {
  bench::BenchOptions& o = a.options;
  o.api = a.endpoint == "completions" ? bench::ApiKind::kCompletions : bench::ApiKind::kChat;
  o.dataset_format = a.dataset_format == "mooncake"  ? bench::DatasetFormat::kMooncake
                     : a.dataset_format == "prompts" ? bench::DatasetFormat::kPrompts
                                                     : bench::DatasetFormat::kAuto;
  o.ignore_eos = !a.no_ignore_eos;
  o.progress = !a.no_progress;
  o.handle_sigint = true;
  auto bad = [](const Status& s) {
    std::fprintf(stderr, "turbine bench: error: %s\n", s.message().c_str());
    return bench::kExitBadArgs;
  };
  if (!a.request_rate.empty()) {
    if (Status s = bench::parse_request_rate(a.request_rate, o); !s.is_ok()) return bad(s);
    // Open loop: --concurrency, when given, caps the requests in flight.
  }
  if (!a.sweep.empty()) {
    auto levels = bench::parse_int_list(a.sweep, "--sweep-concurrency");
    if (!levels) return bad(levels.status());
    o.sweep_concurrency = *levels;
  }
  if (!a.slo.empty()) {
    auto slo = bench::parse_slo(a.slo);
    if (!slo) return bad(slo.status());
    o.slo = *slo;
  }
  return bench::run_bench(o, stdout);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  bench::BenchOptions& o = args->options;
  auto* cmd = app.add_subcommand(
      "bench", "Load-test an OpenAI-compatible endpoint (TTFT, ITL, E2E, throughput, goodput)");
  cmd->add_option("--url", o.url, "Server base URL (http://HOST:PORT[/v1]) or full endpoint URL")
      ->capture_default_str();
  cmd->add_option("--model", o.model, "Model name to send (default: first of GET /v1/models)");
  cmd->add_option("--endpoint", args->endpoint, "API: chat (/v1/chat/completions) or completions")
      ->check(CLI::IsMember({"chat", "completions"}))
      ->capture_default_str();
  cmd->add_option("--api-key", o.api_key, "Bearer token")->envname("OPENAI_API_KEY");
  cmd->add_option("--concurrency,-c", o.concurrency,
                  "Requests in flight (closed loop); with --request-rate: a cap (0: none)")
      ->capture_default_str();
  cmd->add_option(
      "--request-rate", args->request_rate,
      "Open loop: Poisson arrivals at R requests/s, 'inf', or 'trace' (the trace's timestamps)");
  cmd->add_option("--trace-speedup", o.trace_speedup, "Divide trace timestamps by this")
      ->capture_default_str();
  cmd->add_option("--trace-block-tokens", o.trace_block_tokens,
                  "Tokens per Mooncake hash block (the trace's are 512); smaller scales every "
                  "request's input and output lengths by N/512, keeping its prefix sharing")
      ->capture_default_str();
  cmd->add_option(
      "--num-requests,-n", o.num_requests,
      "Requests per point (default 200, or the whole trace, or unbounded with --duration)");
  cmd->add_option("--duration", o.duration_s, "Seconds per point during which requests are issued");
  cmd->add_option("--ramp-up-s", o.ramp_up_s,
                  "Closed loop: start the workers linearly over this many seconds (each point)")
      ->capture_default_str();
  cmd->add_option("--warmup-s", o.warmup_s,
                  "Leave requests started in a point's first S seconds out of its statistics")
      ->capture_default_str();
  cmd->add_option("--sweep-concurrency", args->sweep,
                  "Comma list of concurrency levels, one point each");
  cmd->add_option("--dataset", o.dataset, "JSONL: Mooncake trace or {prompt}/{messages} lines");
  cmd->add_option("--dataset-format", args->dataset_format, "auto, mooncake or prompts")
      ->check(CLI::IsMember({"auto", "mooncake", "prompts"}))
      ->capture_default_str();
  cmd->add_option("--input-len", o.input_len, "Synthetic prompt tokens (approx.)")
      ->capture_default_str();
  cmd->add_option("--input-len-std", o.input_len_std, "Std-dev of a normal input length")
      ->capture_default_str();
  cmd->add_option("--output-len", o.output_len, "max_tokens per request")->capture_default_str();
  cmd->add_option("--output-len-std", o.output_len_std, "Std-dev of a normal output length")
      ->capture_default_str();
  cmd->add_option("--prefix-len", o.prefix_len,
                  "Shared prefix tokens in front of each synthetic prompt")
      ->capture_default_str();
  cmd->add_option("--num-prefix-groups", o.num_prefix_groups, "Distinct shared prefixes")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed for prompts and arrivals")->capture_default_str();
  cmd->add_flag("--calibrate", o.calibrate, "Fit words per token with the server's /tokenize");
  cmd->add_flag("--no-ignore-eos", args->no_ignore_eos, "Do not send ignore_eos: true");
  cmd->add_option("--timeout", o.timeout_s, "Per-request idle timeout in seconds")
      ->capture_default_str();
  cmd->add_option("--slo", args->slo, "Goodput SLO, e.g. ttft=500,itl=50 (ms; also e2e=MS)");
  cmd->add_option("--output-json", o.output_json, "Write the summary as JSON");
  cmd->add_option("--output-csv", o.output_csv, "Write one CSV row per request");
  cmd->add_option("--plot", o.plot_svg,
                  "Write an SVG chart (latency CDFs; sweeps: throughput vs latency)");
  cmd->add_flag("--no-progress", args->no_progress,
                "No progress bar (it is shown only on a terminal)");
  cmd->callback([args] { std::exit(run(*args)); });
}

}  // namespace turbine::cli
