// Structured outputs (issue 19): the time to fill one decoding step's token masks for a batch of
// constrained sequences, on 1 thread and on the engine's mask pool (engine::CpuThreadPool with
// workers that sleep between steps, as Engine::fill_masks uses it) with N threads.
//
// usage: structured_batch_bench [--shared DIR] [--tokenizer llama3] [--seqs 64] [--steps 100]
//                               [--threads 1,2,4] [--seed S] [--schema I] [--spin-ns N]
// --schema I: every sequence under schema I only (0 flat, 1 nested, 2 recursive, 3 json_object);
// --spin-ns: how long idle pool workers spin before they sleep (the engine's pool: 0).
// The sequences cycle through four schemas (flat, nested, recursive, json_object); each follows
// its own seeded random walk (tests/tools/structured/walk.h) and starts at a different point of
// it, so one step's matchers are in varied states. A step fills every sequence's mask (timed),
// then advances every matcher by its walk's next token (not timed). Every thread count's masks
// are checked against the 1-thread run's, bit for bit.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/cpu_thread_pool.h"
#include "named_tokenizer.h"
#include "structured/compiler.h"
#include "structured/matcher.h"
#include "walk.h"

namespace {

namespace fs = std::filesystem;
using namespace turbine::structured;
using Clock = std::chrono::steady_clock;

const ConstraintSpec kSpecs[] = {
    {ConstraintSpec::Kind::kJsonSchema,
     R"({"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"},
        "email":{"type":"string","format":"email"},"active":{"type":"boolean"},
        "score":{"type":"number"},"city":{"type":"string"}},
        "required":["id","name","email","active","score","city"],"additionalProperties":false})"},
    {ConstraintSpec::Kind::kJsonSchema,
     R"({"type":"object","properties":{
        "status":{"enum":["pending","shipped","delivered","cancelled"]},
        "customer":{"type":"object","properties":{"name":{"type":"string"},
          "tier":{"enum":["free","pro","enterprise"]},"tags":{"type":"array",
          "items":{"type":"string","maxLength":20},"maxItems":5}},"required":["name","tier"]},
        "items":{"type":"array","minItems":1,"items":{"type":"object","properties":{
          "sku":{"type":"string"},"qty":{"type":"integer","minimum":1,"maximum":999},
          "price":{"type":"number","minimum":0}},"required":["sku","qty","price"]}}},
        "required":["status","customer","items"]})"},
    {ConstraintSpec::Kind::kJsonSchema,
     R"({"$defs":{"node":{"type":"object","properties":{"name":{"type":"string"},
        "size":{"type":"integer","minimum":0},"children":{"type":"array",
        "items":{"$ref":"#/$defs/node"}}},"required":["name","children"]}},
        "$ref":"#/$defs/node"})"},
    {ConstraintSpec::Kind::kJsonObject, ""},
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  fs::path shared = std::getenv("TURBINE_SHARED") ? std::getenv("TURBINE_SHARED") : "../shared";
  std::string name = "llama3";
  int n_seqs = 64;
  int steps = 100;
  std::vector<int> thread_counts = {1, 2, 4};
  uint64_t seed = 1;
  int only = -1;
  int64_t spin_ns = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--shared") {
      shared = next();
    } else if (a == "--tokenizer") {
      name = next();
    } else if (a == "--seqs") {
      n_seqs = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--steps") {
      steps = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--threads") {
      thread_counts.clear();
      std::stringstream ss(next());
      for (std::string t; std::getline(ss, t, ',');) thread_counts.push_back(std::atoi(t.c_str()));
    } else if (a == "--schema") {
      only = std::atoi(next().c_str());
    } else if (a == "--spin-ns") {
      spin_ns = std::atoll(next().c_str());
    } else if (a == "--seed") {
      seed = std::strtoull(next().c_str(), nullptr, 10);
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  auto tok = turbine::structured::test_util::load_named_tokenizer(shared, name);
  if (!tok.has_value()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), tok.status().to_string().c_str());
    return 1;
  }
  auto vocab = Vocabulary::from_tokenizer(**tok);
  if (!vocab.has_value()) return 1;
  GrammarCompiler compiler(*vocab);
  std::vector<std::shared_ptr<const CompiledGrammar>> grammars;
  for (size_t k = 0; k < std::size(kSpecs); ++k) {
    if (only >= 0 && static_cast<size_t>(only) != k) continue;
    auto g = compiler.compile(kSpecs[k]);
    if (!g.has_value()) {
      std::fprintf(stderr, "compile: %s\n", g.status().to_string().c_str());
      return 1;
    }
    grammars.push_back(*g);
  }
  // Each sequence's walk: long enough for its start offset plus the measured steps (a walk that
  // ends early is continued by another seeded walk of the same grammar).
  const turbine::structured::test_util::Walker walker(**vocab);
  std::mt19937_64 rng(seed);
  std::vector<std::vector<int32_t>> walks(static_cast<size_t>(n_seqs));
  std::vector<size_t> offsets(static_cast<size_t>(n_seqs));
  for (int s = 0; s < n_seqs; ++s) {
    const auto& g = grammars[static_cast<size_t>(s) % grammars.size()];
    const size_t offset = static_cast<size_t>(s * 7 % 97);
    offsets[static_cast<size_t>(s)] = offset;
    Matcher m(g);
    turbine::structured::test_util::WalkOptions o;
    o.max_tokens = offset + static_cast<size_t>(steps) + 1;
    o.soft_tokens = o.max_tokens;  // never steer: keep the output open
    walks[static_cast<size_t>(s)] = walker.walk(m, rng, o).tokens;
  }
  const size_t words = (*vocab)->mask_words();
  std::vector<std::vector<uint32_t>> reference;  // the 1-thread run's masks, step by step
  std::printf("| threads | step p50 us | step p99 us | mean us | speed-up (mean) vs first |\n");
  std::printf("|---|---|---|---|---|\n");
  double first_mean = 0;
  for (int threads : thread_counts) {
    turbine::engine::CpuThreadPool pool(threads, spin_ns);
    std::vector<std::unique_ptr<Matcher>> matchers;  // not movable: its stacks point into it
    std::vector<size_t> pos(static_cast<size_t>(n_seqs));
    for (int s = 0; s < n_seqs; ++s) {
      matchers.push_back(
          std::make_unique<Matcher>(grammars[static_cast<size_t>(s) % grammars.size()]));
      const auto& w = walks[static_cast<size_t>(s)];
      const size_t off = std::min(offsets[static_cast<size_t>(s)], w.empty() ? 0 : w.size() - 1);
      for (size_t k = 0; k < off; ++k) (void)matchers.back()->accept_token(w[k]);
      pos[static_cast<size_t>(s)] = off;
    }
    std::vector<std::vector<uint32_t>> masks(static_cast<size_t>(n_seqs),
                                             std::vector<uint32_t>(words));
    std::vector<double> step_us;
    size_t checked = 0;
    for (int step = 0; step < steps; ++step) {
      const auto t0 = Clock::now();
      pool.run(n_seqs, [&](int task, int) {
        matchers[static_cast<size_t>(task)]->fill_next_token_bitmask(
            masks[static_cast<size_t>(task)].data());
      });
      step_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      for (int s = 0; s < n_seqs; ++s) {
        const auto& m = masks[static_cast<size_t>(s)];
        if (reference.size() < static_cast<size_t>(steps * n_seqs)) {
          reference.push_back(m);
        } else if (reference[checked++] != m) {
          std::fprintf(stderr, "%d threads: step %d sequence %d: the mask differs\n", threads, step,
                       s);
          return 1;
        }
        // Advance along the walk; a finished walk restarts its matcher.
        const auto& w = walks[static_cast<size_t>(s)];
        size_t& p = pos[static_cast<size_t>(s)];
        if (p < w.size() && !(*vocab)->is_stop(w[p]) &&
            matchers[static_cast<size_t>(s)]->accept_token(w[p])) {
          ++p;
        } else {
          matchers[static_cast<size_t>(s)]->reset();
          p = 0;
        }
      }
    }
    double sum = 0;
    for (double x : step_us) sum += x;
    const double mean = sum / static_cast<double>(step_us.size());
    if (first_mean == 0) first_mean = mean;
    std::printf("| %d | %.0f | %.0f | %.0f | %.2f |\n", threads, percentile(step_us, 0.5),
                percentile(step_us, 0.99), mean, first_mean / mean);
    std::fflush(stdout);
  }
  std::fprintf(stderr, "%d sequences x %d steps, %s (%d tokens); masks identical across runs\n",
               n_seqs, steps, name.c_str(), (*vocab)->size());
  return 0;
}
