// engine_bench: decode throughput of the in-process engine (CPU backend + engine::Engine) at
// several concurrencies, without the network stack.
//
//   engine_bench --model M [--concurrency 1,8,32] [--threads 0] [--prompt-len 16]
//                [--max-tokens 128] [--repeat 1] [--json FILE] [--tensor-parallel-size 1]
//
// For each concurrency N, N requests with different random prompts (seeded) are submitted at
// once (greedy, ignore_eos, max_tokens M, prefix caching off). Decode tokens/s is aggregate and
// excludes prefill: it counts the tokens produced after the moment every sequence has its first
// token, over the time from that moment to the last token. With --repeat R the best of R runs is
// reported. Prints a table, and JSON to --json.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/backend.h"
#include "engine/cpu_kernels.h"
#include "engine/engine.h"
#include "model/model.h"

namespace {

using namespace turbine;
using Clock = std::chrono::steady_clock;

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "engine_bench: %s\n(see the comment at the top of bench/engine_bench.cpp)\n",
               why.c_str());
  std::exit(2);
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(std::atoi(item.c_str()));
  return out;
}

struct RunResult {
  int concurrency = 0;
  int decode_tokens = 0;
  double decode_seconds = 0;
  double first_token_seconds = 0;  // submit -> every sequence has its first token
  double total_seconds = 0;
  double decode_tok_s() const { return decode_tokens / decode_seconds; }
};

// One run: `n` requests at once; callbacks (engine thread) only record timestamps.
RunResult run_once(engine::Engine& eng, int n, int prompt_len, int max_tokens, int32_t n_vocab,
                   uint64_t& next_id, uint64_t seed) {
  std::mutex mu;
  std::condition_variable cv;
  int finished = 0;
  std::vector<std::vector<Clock::time_point>> stamps(static_cast<size_t>(n));
  for (auto& s : stamps) s.reserve(static_cast<size_t>(max_tokens));
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_int_distribution<int32_t> tok(3, n_vocab - 1);
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    engine::EngineRequest req;
    req.id = next_id++;
    req.prompt.push_back(1);  // BOS
    while (static_cast<int>(req.prompt.size()) < prompt_len) req.prompt.push_back(tok(rng));
    req.params.temperature = 0.0f;
    req.params.ignore_eos = true;
    req.params.max_tokens = max_tokens;
    auto* mine = &stamps[static_cast<size_t>(i)];
    req.on_output = [&, mine](engine::EngineOutput&& out) {
      const auto now = Clock::now();
      for (size_t k = 0; k < out.tokens.size(); ++k) mine->push_back(now);
      if (out.finish != engine::FinishReason::kNone) {
        if (out.finish != engine::FinishReason::kLength) {
          std::fprintf(stderr, "request ended with %s: %s\n",
                       engine::finish_reason_name(out.finish), out.error.to_string().c_str());
        }
        std::lock_guard lock(mu);
        ++finished;
        cv.notify_one();
      }
    };
    if (Status s = eng.submit(std::move(req)); !s.is_ok()) usage(s.to_string());
  }
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return finished == n; });
  }
  Clock::time_point all_first = t0, last = t0;
  for (const auto& s : stamps) {
    if (s.empty()) usage("a request produced no tokens");
    all_first = std::max(all_first, s.front());
    last = std::max(last, s.back());
  }
  RunResult r;
  r.concurrency = n;
  for (const auto& s : stamps)
    r.decode_tokens +=
        static_cast<int>(std::count_if(s.begin(), s.end(), [&](auto t) { return t > all_first; }));
  r.decode_seconds = std::chrono::duration<double>(last - all_first).count();
  r.first_token_seconds = std::chrono::duration<double>(all_first - t0).count();
  r.total_seconds = std::chrono::duration<double>(last - t0).count();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_path, json_path;
  std::vector<int> concurrency = {1, 8, 32};
  int threads = 0, prompt_len = 16, max_tokens = 128, repeat = 1, tp = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage("missing value for " + a);
    const std::string v = argv[++i];
    if (a == "--model")
      model_path = v;
    else if (a == "--concurrency")
      concurrency = parse_list(v);
    else if (a == "--threads")
      threads = std::atoi(v.c_str());
    else if (a == "--tensor-parallel-size")
      tp = std::atoi(v.c_str());
    else if (a == "--prompt-len")
      prompt_len = std::atoi(v.c_str());
    else if (a == "--max-tokens")
      max_tokens = std::atoi(v.c_str());
    else if (a == "--repeat")
      repeat = std::atoi(v.c_str());
    else if (a == "--json")
      json_path = v;
    else
      usage("unknown option " + a);
  }
  if (model_path.empty()) usage("--model is required");
  if (concurrency.empty() || prompt_len < 1 || max_tokens < 2 || repeat < 1) usage("bad options");
  const int max_conc = *std::max_element(concurrency.begin(), concurrency.end());

  auto loaded = model::load_model(model_path);
  if (!loaded.has_value()) usage(loaded.status().to_string());
  const model::Model& m = **loaded;
  engine::CpuBackendOptions bo;
  bo.n_threads = threads;
  bo.tensor_parallel_size = tp;
  bo.max_num_seqs = max_conc;
  // Room for every sequence at once (no preemption), whatever the model's own context.
  bo.max_context = std::min(m.config().max_context, prompt_len + max_tokens + 16);
  auto backend = engine::make_cpu_backend(m, bo);
  if (!backend.has_value()) usage(backend.status().to_string());
  engine::EngineOptions eo;
  eo.max_num_seqs = max_conc;
  eo.max_num_batched_tokens = std::max(2048, max_conc * prompt_len);
  eo.enable_prefix_caching = false;
  engine::Engine eng(std::move(backend).value(), m.config().n_vocab, eo);
  const int used_threads =
      threads > 0 ? threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  std::printf("model %s: dim %d, %d layers, %d heads, vocab %d (%s); %d threads, simd %s, TP %d\n",
              model_path.c_str(), m.config().dim, m.config().n_layers, m.config().n_heads,
              m.config().n_vocab, m.config().arch_name.c_str(), used_threads,
              engine::cpu_simd_level(), tp);

  uint64_t next_id = 1;
  // Warm-up: faults the weights in and lets the pool settle.
  run_once(eng, 1, prompt_len, 8, m.config().n_vocab, next_id, 0);

  std::vector<RunResult> results;
  std::printf("%12s %16s %14s %14s\n", "concurrency", "decode tok/s", "per seq tok/s", "prefill s");
  for (int c : concurrency) {
    RunResult best;
    for (int r = 0; r < repeat; ++r) {
      RunResult res = run_once(eng, c, prompt_len, max_tokens, m.config().n_vocab, next_id,
                               static_cast<uint64_t>(c * 1000 + r));
      if (r == 0 || res.decode_tok_s() > best.decode_tok_s()) best = res;
    }
    results.push_back(best);
    std::printf("%12d %16.1f %14.1f %14.3f\n", c, best.decode_tok_s(), best.decode_tok_s() / c,
                best.first_token_seconds);
    std::fflush(stdout);
  }
  eng.shutdown();

  std::ostringstream js;
  js << "{\"model\": \"" << model_path << "\", \"threads\": " << used_threads << ", \"simd\": \""
     << engine::cpu_simd_level() << "\", \"prompt_len\": " << prompt_len
     << ", \"max_tokens\": " << max_tokens << ", \"results\": [";
  for (size_t i = 0; i < results.size(); ++i) {
    const RunResult& r = results[i];
    js << (i ? ", " : "") << "{\"concurrency\": " << r.concurrency
       << ", \"decode_tok_s\": " << r.decode_tok_s() << ", \"decode_tokens\": " << r.decode_tokens
       << ", \"decode_seconds\": " << r.decode_seconds
       << ", \"first_token_seconds\": " << r.first_token_seconds << "}";
  }
  js << "]}\n";
  if (!json_path.empty()) {
    std::ofstream(json_path) << js.str();
  } else {
    std::printf("%s", js.str().c_str());
  }
  return 0;
}
