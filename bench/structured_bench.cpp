// Structured-output costs on one core: token-mask time per decoding step (p50/p99/max after a
// warm-up walk) and compile time per schema (cold, and the cache-hit path), for three schemas
// (flat object; nested with arrays and enums; recursive) and real vocabularies.
//
// usage: structured_bench [--shared DIR] [--tokenizers llama3,qwen3] [--walks N] [--seed S]
//                         [--cold-repeats N]
// Token sequences: N seeded random walks through the masks (uniform among allowed tokens, then
// steered to finish after 150 tokens) plus one hand-written instance per schema tokenized by the
// model's tokenizer. Each step times fill_next_token_bitmask() alone (and the minimum of three
// runs of the same step, which leaves out preemption on a shared machine); accept_token() is
// timed separately. The peer, on every 10th step: the same mask without the token-mask cache.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "named_tokenizer.h"
#include "structured/compiler.h"
#include "structured/matcher.h"
#include "walk.h"

namespace {

namespace fs = std::filesystem;
using namespace turbine::structured;
using Clock = std::chrono::steady_clock;

struct Schema {
  const char* name;
  const char* text;
  const char* instance;  // a valid output, tokenized as a model would
  ConstraintSpec::Kind kind = ConstraintSpec::Kind::kJsonSchema;
};

const Schema kSchemas[] = {
    {"flat",
     R"({"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"},
        "email":{"type":"string","format":"email"},"active":{"type":"boolean"},
        "score":{"type":"number"},"city":{"type":"string"}},
        "required":["id","name","email","active","score","city"],"additionalProperties":false})",
     R"({"id": 1042, "name": "Ada Lovelace", "email": "ada@example.com", "active": true, "score": 97.5, "city": "London"})"},
    {"nested",
     R"({"type":"object","properties":{
        "order_id":{"type":"string","pattern":"^ORD-[0-9]{6}$"},
        "status":{"enum":["pending","shipped","delivered","cancelled"]},
        "customer":{"type":"object","properties":{"name":{"type":"string"},
          "tier":{"enum":["free","pro","enterprise"]},"tags":{"type":"array",
          "items":{"type":"string","maxLength":20},"maxItems":5}},"required":["name","tier"]},
        "items":{"type":"array","minItems":1,"items":{"type":"object","properties":{
          "sku":{"type":"string"},"qty":{"type":"integer","minimum":1,"maximum":999},
          "price":{"type":"number","minimum":0},"options":{"type":"array",
          "items":{"enum":["gift","express","insured"]}}},"required":["sku","qty","price"]}},
        "placed":{"type":"string","format":"date-time"}},
        "required":["order_id","status","customer","items"]})",
     R"({"order_id": "ORD-004211", "status": "shipped", "customer": {"name": "Grace Hopper", "tier": "pro", "tags": ["navy", "cobol"]}, "items": [{"sku": "KB-101", "qty": 2, "price": 49.99, "options": ["gift"]}, {"sku": "MS-7", "qty": 1, "price": 19.5}], "placed": "2024-05-17T09:30:00Z"})"},
    {"recursive",
     R"({"$defs":{"node":{"type":"object","properties":{"name":{"type":"string"},
        "size":{"type":"integer","minimum":0},"children":{"type":"array",
        "items":{"$ref":"#/$defs/node"}}},"required":["name","children"]}},
        "$ref":"#/$defs/node"})",
     R"({"name": "root", "size": 0, "children": [{"name": "src", "children": [{"name": "main.cpp", "size": 2048, "children": []}]}, {"name": "README.md", "size": 512, "children": []}]})"},
    // Not one of the three: any JSON object, where every value is a recursive rule (the most
    // uncertain tokens per step).
    {"json_object", "",
     R"({"title": "Notes", "tags": ["a", "b"], "meta": {"pages": 12, "draft": false, "score": -0.5}})",
     ConstraintSpec::Kind::kJsonObject},
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

double mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

double micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

// This thread's CPU time: compile times on a shared machine without the time spent preempted.
double cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path shared = std::getenv("TURBINE_SHARED") ? std::getenv("TURBINE_SHARED") : "../shared";
  std::vector<std::string> names = {"llama3", "qwen3"};
  int walks = 20;
  int cold_repeats = 3;
  uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--shared") {
      shared = next();
    } else if (a == "--tokenizers") {
      names.clear();
      std::stringstream ss(next());
      for (std::string t; std::getline(ss, t, ',');) names.push_back(t);
    } else if (a == "--walks") {
      walks = std::atoi(next().c_str());
    } else if (a == "--seed") {
      seed = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--cold-repeats") {
      cold_repeats = std::max(1, std::atoi(next().c_str()));
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  std::printf(
      "| vocab | schema | compile cold ms CPU (wall), median of %d | cache hit us | mask p50 us | "
      "mask p99 us | mask max us | min-of-3 mask p99 us | no-cache mask mean us | "
      "accept p50 us | steps | "
      "mask cache entries | uncertain | cache MB |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
      cold_repeats);
  for (const std::string& name : names) {
    auto tok = turbine::structured::test_util::load_named_tokenizer(shared, name);
    if (!tok.has_value()) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), tok.status().to_string().c_str());
      return 1;
    }
    const auto t0 = Clock::now();
    auto vocab = Vocabulary::from_tokenizer(**tok);
    const double vocab_ms = micros(Clock::now() - t0) / 1000;
    if (!vocab.has_value()) return 1;
    std::fprintf(stderr, "%s: %d tokens, vocabulary built in %.1f ms, trie %zu nodes\n",
                 name.c_str(), (*vocab)->size(), vocab_ms, (*vocab)->trie().size());
    for (const Schema& s : kSchemas) {
      const ConstraintSpec spec{s.kind, s.text};
      std::vector<double> cold, cold_cpu;
      std::shared_ptr<const CompiledGrammar> g;
      for (int r = 0; r < cold_repeats; ++r) {
        GrammarCompiler compiler(*vocab);
        const auto c0 = Clock::now();
        const double cpu0 = cpu_ms();
        auto res = compiler.compile(spec);
        cold_cpu.push_back(cpu_ms() - cpu0);
        cold.push_back(micros(Clock::now() - c0) / 1000);
        if (!res.has_value()) {
          std::fprintf(stderr, "%s: %s\n", s.name, res.status().to_string().c_str());
          return 1;
        }
        g = *res;
      }
      GrammarCompiler compiler(*vocab);
      (void)compiler.compile(spec);
      std::vector<double> hits;
      for (int r = 0; r < 1000; ++r) {
        const auto h0 = Clock::now();
        auto res = compiler.compile(spec);
        hits.push_back(micros(Clock::now() - h0));
      }
      // Token sequences.
      std::vector<std::vector<int32_t>> seqs;
      std::mt19937_64 rng(seed);
      const turbine::structured::test_util::Walker walker(**vocab);
      for (int w = 0; w < walks + 1; ++w) {
        Matcher m(g);
        turbine::structured::test_util::WalkOptions o;
        o.soft_tokens = 150;
        seqs.push_back(walker.walk(m, rng, o).tokens);
      }
      {
        std::vector<int32_t> ids = (*tok)->encode(s.instance, false);
        ids.push_back((*vocab)->stop_ids().front());
        seqs.push_back(std::move(ids));
      }
      std::vector<double> mask_us, accept_us, reference_us, best3_us;
      std::vector<uint32_t> mask((*vocab)->mask_words());
      for (size_t q = 0; q < seqs.size(); ++q) {
        Matcher m(g);
        for (int32_t id : seqs[q]) {
          const auto m0 = Clock::now();
          m.fill_next_token_bitmask(mask.data());
          const auto m1 = Clock::now();
          // The same step twice more: the minimum of three leaves out preemption by other
          // tenants of a shared machine.
          double best = micros(m1 - m0);
          for (int rep = 0; rep < 2; ++rep) {
            const auto b0 = Clock::now();
            m.fill_next_token_bitmask(mask.data());
            best = std::min(best, micros(Clock::now() - b0));
          }
          const auto a0 = Clock::now();
          const bool ok = m.accept_token(id);
          const auto a1 = Clock::now();
          if (!ok) {
            std::fprintf(stderr, "%s/%s: sequence %zu rejected token %d\n", name.c_str(), s.name, q,
                         id);
            return 1;
          }
          if (q == 0) continue;  // warm-up walk
          mask_us.push_back(micros(m1 - m0));
          best3_us.push_back(best);
          accept_us.push_back(micros(a1 - a0));
          if (mask_us.size() % 10 == 0) {
            // The peer: the same mask without the precomputed cache (a full trie walk).
            std::vector<uint32_t> ref(mask.size());
            m.rollback(1);
            const auto r0 = Clock::now();
            m.fill_next_token_bitmask_reference(ref.data());
            reference_us.push_back(micros(Clock::now() - r0));
            (void)m.accept_token(id);
            if (ref != mask) {
              std::fprintf(stderr, "%s/%s: cached and reference masks differ\n", name.c_str(),
                           s.name);
              return 1;
            }
          }
        }
      }
      const auto& st = g->mask_cache().stats();
      std::sort(cold.begin(), cold.end());
      std::sort(cold_cpu.begin(), cold_cpu.end());
      std::printf(
          "| %s | %s | %.1f (%.1f) | %.2f | %.1f | %.1f | %.1f | %.1f | %.0f | %.2f | %zu | %d | "
          "%zu | "
          "%.1f |\n",
          name.c_str(), s.name, cold_cpu[cold_cpu.size() / 2], cold[cold.size() / 2],
          percentile(hits, 0.5), percentile(mask_us, 0.5), percentile(mask_us, 0.99),
          *std::max_element(mask_us.begin(), mask_us.end()), percentile(best3_us, 0.99),
          mean(reference_us), percentile(accept_us, 0.5), mask_us.size(), st.entries,
          st.uncertain_total, static_cast<double>(g->memory_bytes()) / 1e6);
      std::fflush(stdout);
    }
  }
  return 0;
}
