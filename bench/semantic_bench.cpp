// semantic_bench: measurements of the semantic stage (issue 21), recorded in docs/PERFORMANCE.md.
//
//   semantic_bench overhead [--rate 1000] [--requests 20000] [--cpu 0]
//       The whole SemanticStage::process (+ store for passes) with keyword rules, PII, jailbreak
//       and the exact cache, no models, driven open-loop at --rate requests/s from one thread
//       pinned to one core. Reports service time (process + store) and latency from the
//       scheduled arrival (queueing included) percentiles, and the thread's CPU time per
//       request (the work itself, free of preemption by other processes).
//   semantic_bench index [--dim 384]
//       Exact scan vs HNSW search time per query at growing sizes: the crossover that sets
//       semantic_cache.exact_search_max_entries.
//   semantic_bench pii [--seed 2024] [--texts 2500]
//       Precision/recall per type on the generated labelled corpus.
//   semantic_bench jailbreak [--threshold 0.7] [--verbose]
//       Detection rate per family and false-positive rate per benign kind.
//   semantic_bench contention [--entries 4096] [--dim 384]
//       One partition filling past exact_search_max_entries (2048: the HNSW graph is built, then
//       rebuilt as the tail grows) from a writer thread while a reader thread looks up without
//       pause: the reader's lookup latency and the writer's insert latency. Lookups must not wait
//       for a build (the graph is built aside) or for HNSW inserts.
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "semantic/jailbreak.h"
#include "semantic/pii.h"
#include "semantic/stage.h"
#include "semantic/text.h"
#include "semantic/vector_index.h"
#include "semantic_corpus.h"

using namespace turbine::semantic;
using Clock = std::chrono::steady_clock;

namespace {

std::string arg(int argc, char** argv, const char* name, const char* def) {
  for (int i = 2; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return def;
}
bool flag(int argc, char** argv, const char* name) {
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return true;
  }
  return false;
}

// CPU time of this thread: the work of a request without the time the shared machine's scheduler
// gave to others.
double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

constexpr const char* kOverheadConfig = R"(
models:
  - {name: qwen3-8b, reasoning_family: qwen3, pii_policy: {allow_by_default: false, allowed_types: [EMAIL_ADDRESS]}}
  - {name: llama}
signals:
  keywords:
    - {name: math, keywords: [integral, derivative, "solve for", equation, theorem, algebra], regex: ['\d+\s*[+*/^-]\s*\d+']}
    - {name: code, keywords: [python, javascript, function, compile, "stack trace", rust, golang]}
    - {name: law, keywords: [contract, lawsuit, statute, "legal advice", tort]}
    - {name: health, keywords: [symptom, diagnosis, medication, dosage, vaccine]}
  length:
    - {name: long, min_chars: 1500}
decisions:
  - {name: math, priority: 40, rules: {operator: OR, conditions: [{type: keyword, name: math}]}, models: [qwen3-8b, llama], use_reasoning: true, system_prompt: "You are a mathematics expert."}
  - {name: code, priority: 30, rules: {operator: AND, conditions: [{type: keyword, name: code}, {operator: NOT, conditions: [{type: length, name: long}]}]}, models: [llama], system_prompt: "You are a senior engineer."}
  - {name: law, priority: 20, rules: {operator: OR, conditions: [{type: keyword, name: law}]}, models: [llama]}
  - {name: health, priority: 10, rules: {operator: OR, conditions: [{type: keyword, name: health}]}, models: [llama]}
default_decision: {models: [llama]}
pii: {action: block}
jailbreak: {threshold: 0.7}
semantic_cache: {enabled: true, semantic: false, max_entries: 5000, ttl_seconds: 3600}
)";

int overhead(int argc, char** argv) {
  double rate = std::stod(arg(argc, argv, "--rate", "1000"));
  size_t n = std::stoul(arg(argc, argv, "--requests", "20000"));
  int cpu = std::stoi(arg(argc, argv, "--cpu", "0"));
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  bool pinned = sched_setaffinity(0, sizeof(set), &set) == 0;

  auto cfg = parse_semantic_config(kOverheadConfig);
  if (!cfg.has_value()) {
    std::fprintf(stderr, "%s\n", cfg.status().to_string().c_str());
    return 1;
  }
  auto stage_r = SemanticStage::create(*cfg, Models{});
  if (!stage_r.has_value()) {
    std::fprintf(stderr, "%s\n", stage_r.status().to_string().c_str());
    return 1;
  }
  SemanticStage& stage = **stage_r;

  // Request mix: benign prompts (some asked again by the same tenant: exact cache hits), PII
  // texts, attacks; a system prompt and a short history on a third of them.
  auto benign = corpus::benign_prompts();
  auto attacks = corpus::jailbreak_attacks();
  auto pii = corpus::generate_pii_corpus(99, 2000);
  std::mt19937_64 rng(5);
  std::vector<SemanticRequest> reqs;
  reqs.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    SemanticRequest r;
    r.model = (i % 4 == 0) ? "llama" : "MoM";
    r.tenant = "tenant-" + std::to_string(rng() % 50);
    r.params_fingerprint = "{\"temperature\":0.7,\"max_tokens\":256}";
    uint64_t k = rng() % 100;
    std::string text;
    if (k < 70) {
      text = benign[rng() % std::min<size_t>(benign.size(), 400)].text;  // repeats -> hits
    } else if (k < 90) {
      text = pii[rng() % pii.size()].text;
    } else {
      text = attacks[rng() % attacks.size()].text;
    }
    if (i % 3 == 0) {
      r.messages.push_back({"system", "You are a helpful assistant for ACME Corp."});
      r.messages.push_back({"user", "Hello!"});
      r.messages.push_back({"assistant", "Hi! How can I help you today?"});
    }
    r.messages.push_back({"user", text});
    reqs.push_back(std::move(r));
  }

  std::vector<double> service_us, latency_us, cpu_us;
  service_us.reserve(n);
  cpu_us.reserve(n);
  latency_us.reserve(n);
  std::map<int, size_t> kinds;
  auto period = std::chrono::duration<double>(1.0 / rate);
  auto t0 = Clock::now();
  for (size_t i = 0; i < n; ++i) {
    auto due = t0 + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(i));
    // Sleep between requests like a server thread (a spinning thread on a shared machine is
    // preempted mid-request far more often); wake-up jitter only shows in the arrival latency.
    std::this_thread::sleep_until(due);
    auto s = Clock::now();
    double c0 = thread_cpu_us();
    SemanticOutcome o = stage.process(reqs[i]);
    if (o.kind == OutcomeKind::kPass && o.ticket) {
      stage.store(*o.ticket, CachedResponse{o.model, "A short cached answer.", "stop", 20, 5});
    }
    double c1 = thread_cpu_us();
    auto e = Clock::now();
    cpu_us.push_back(c1 - c0);
    service_us.push_back(std::chrono::duration<double, std::micro>(e - s).count());
    latency_us.push_back(std::chrono::duration<double, std::micro>(e - due).count());
    ++kinds[static_cast<int>(o.kind)];
  }
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf(
      "semantic stage overhead: %zu requests at %.0f req/s offered (%.0f achieved), one "
      "thread%s\n",
      n, rate, static_cast<double>(n) / wall, pinned ? " pinned to one core" : "");
  std::printf("outcomes: pass %zu, block %zu, cache hit %zu\n", kinds[0], kinds[1], kinds[2]);
  std::printf("service (process + store) us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
              pct(service_us, 0.5), pct(service_us, 0.9), pct(service_us, 0.99),
              pct(service_us, 0.999), pct(service_us, 1.0));
  std::printf("thread CPU time us:         p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
              pct(cpu_us, 0.5), pct(cpu_us, 0.9), pct(cpu_us, 0.99), pct(cpu_us, 0.999),
              pct(cpu_us, 1.0));
  std::printf("latency from arrival us:   p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
              pct(latency_us, 0.5), pct(latency_us, 0.9), pct(latency_us, 0.99),
              pct(latency_us, 0.999), pct(latency_us, 1.0));
  MetricsSnapshot m = stage.metrics();
  std::printf("per signal (stage metrics): ");
  for (const auto& [name, h] : m.signal_latency) {
    std::printf("%s %llu calls mean %.1f us; ", name.c_str(),
                static_cast<unsigned long long>(h.count),
                h.count ? 1e6 * h.sum / static_cast<double>(h.count) : 0.0);
  }
  std::printf("\n");
  return 0;
}

int index_crossover(int argc, char** argv) {
  size_t dim = std::stoul(arg(argc, argv, "--dim", "384"));
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  // --clustered: 64 topic centres plus noise (sentence embeddings of real traffic cluster; uniform
  // random 384-d vectors are HNSW's worst case).
  bool clustered = flag(argc, argv, "--clustered");
  std::vector<std::vector<float>> centres(64, std::vector<float>(dim));
  for (auto& c : centres) {
    for (float& x : c) x = nd(rng);
  }
  auto random_unit = [&] {
    std::vector<float> v(dim);
    const auto& c = centres[rng() % centres.size()];
    for (size_t i = 0; i < dim; ++i) v[i] = clustered ? c[i] + 0.35f * nd(rng) : nd(rng);
    normalize_vector(v);
    return v;
  };
  std::printf(
      "dim %zu; median per-query search time (top 8), exact scan vs HNSW (M 16, efC 200, ef 64)\n",
      dim);
  std::printf("%s data\n%8s %12s %12s %12s\n", clustered ? "clustered" : "uniform random",
              "entries", "exact_us", "hnsw_us", "build_ms");
  size_t max_n = std::stoul(arg(argc, argv, "--max", "8192"));
  for (size_t n : {32u, 64u, 128u, 256u, 512u, 1024u, 2048u, 4096u, 8192u, 16384u, 32768u}) {
    if (n > max_n) break;
    std::vector<std::vector<float>> data;
    for (size_t i = 0; i < n; ++i) data.push_back(random_unit());
    VectorIndex exact(dim, SIZE_MAX, {});
    for (size_t i = 0; i < n; ++i) exact.add(i, data[i].data());
    auto b0 = Clock::now();
    // exact_max n and no executor: the n-th add builds the whole graph inline, once.
    VectorIndex hnsw(dim, n, {16, 200, 64});
    for (size_t i = 0; i < n; ++i) hnsw.add(i, data[i].data());
    double build_ms = std::chrono::duration<double, std::milli>(Clock::now() - b0).count();
    std::vector<std::vector<float>> queries;
    for (int q = 0; q < 200; ++q) queries.push_back(random_unit());
    // Median of per-query times: the shared machine preempts us at random.
    auto time = [&](VectorIndex& idx) {
      std::vector<double> us;
      size_t sink = 0;
      for (int rep = 0; rep < 3; ++rep) {
        for (const auto& q : queries) {
          auto s = Clock::now();
          sink += idx.search(q.data(), 8).size();
          us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
        }
      }
      if (sink == 0) std::printf("?");
      return pct(us, 0.5);
    };
    std::printf("%8zu %12.1f %12.1f %12.1f\n", n, time(exact), time(hnsw), build_ms);
  }
  return 0;
}

int pii_eval(int argc, char** argv) {
  uint64_t seed = std::stoull(arg(argc, argv, "--seed", "2024"));
  size_t texts = std::stoul(arg(argc, argv, "--texts", "2500"));
  auto corpus = corpus::generate_pii_corpus(seed, texts);
  size_t labels = 0, bytes = 0;
  for (const auto& t : corpus) {
    labels += t.pii.size();
    bytes += t.text.size();
  }
  auto s0 = Clock::now();
  auto scores = corpus::evaluate_pii(corpus);
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - s0).count();
  std::printf(
      "PII corpus: seed %llu, %zu texts, %zu labelled values, %zu bytes; detection %.1f ms "
      "(%.2f us/text)\n",
      static_cast<unsigned long long>(seed), corpus.size(), labels, bytes, ms,
      1000.0 * ms / static_cast<double>(corpus.size()));
  std::printf("| type | TP | FP | FN | precision | recall |\n|---|---|---|---|---|---|\n");
  for (const auto& [type, s] : scores) {
    std::printf("| %s | %llu | %llu | %llu | %.4f | %.4f |\n", type.c_str(),
                static_cast<unsigned long long>(s.tp), static_cast<unsigned long long>(s.fp),
                static_cast<unsigned long long>(s.fn), s.precision(), s.recall());
  }
  if (flag(argc, argv, "--verbose")) {
    PiiDetector det(
        {"US_SSN", "CREDIT_CARD", "IBAN_CODE", "EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS"});
    for (const auto& t : corpus) {
      for (const PiiMatch& m : det.detect(t.text)) {
        bool labelled = std::any_of(t.pii.begin(), t.pii.end(), [&](const corpus::Span& s) {
          return s.type == m.type && s.begin == m.begin && s.end == m.end;
        });
        if (!labelled) {
          std::printf("FP %s '%s' in: %s\n", m.type.c_str(),
                      t.text.substr(m.begin, m.end - m.begin).c_str(), t.text.c_str());
        }
      }
    }
  }
  return 0;
}

int jailbreak_eval(int argc, char** argv) {
  float threshold = std::stof(arg(argc, argv, "--threshold", "0.7"));
  bool verbose = flag(argc, argv, "--verbose");
  JailbreakDetector d;
  std::map<std::string, std::pair<size_t, size_t>> fam;  // caught, total
  size_t hand = 0, hand_caught = 0, obf = 0, obf_caught = 0;
  for (const auto& a : corpus::jailbreak_attacks()) {
    bool hit = d.score(a.text).score >= threshold;
    std::string key = a.family + (a.obfuscated ? " (obfuscated)" : "");
    fam[key].first += hit;
    fam[key].second += 1;
    if (!a.non_english) {
      (a.obfuscated ? obf : hand) += 1;
      (a.obfuscated ? obf_caught : hand_caught) += hit;
    }
    if (verbose && !hit) std::printf("MISS [%s] %s\n", key.c_str(), a.text.c_str());
  }
  std::map<std::string, std::pair<size_t, size_t>> kinds;  // flagged, total
  for (const auto& b : corpus::benign_prompts()) {
    bool hit = d.score(b.text).score >= threshold;
    kinds[b.kind].first += hit;
    kinds[b.kind].second += 1;
    if (verbose && hit) std::printf("FP [%s] %s\n", b.kind.c_str(), b.text.c_str());
  }
  std::printf("threshold %.2f\n| attack family | detected |\n|---|---|\n", threshold);
  for (const auto& [k, v] : fam) std::printf("| %s | %zu / %zu |\n", k.c_str(), v.first, v.second);
  std::printf("English hand-written: %zu / %zu = %.1f%%; obfuscated copies: %zu / %zu = %.1f%%\n",
              hand_caught, hand, 100.0 * double(hand_caught) / double(hand), obf_caught, obf,
              100.0 * double(obf_caught) / double(obf));
  std::printf("| benign kind | flagged |\n|---|---|\n");
  size_t flagged = 0, total = 0;
  for (const auto& [k, v] : kinds) {
    std::printf("| %s | %zu / %zu |\n", k.c_str(), v.first, v.second);
    flagged += v.first;
    total += v.second;
  }
  std::printf("false-positive rate: %zu / %zu = %.2f%%\n", flagged, total,
              100.0 * double(flagged) / double(total));
  // The held-out set (never tuned on).
  size_t hc = 0, hn = 0, hf = 0, hb = 0;
  for (const auto& a : corpus::heldout_attacks()) {
    bool hit = d.score(a.text).score >= threshold;
    hc += hit;
    ++hn;
    if (verbose && !hit) std::printf("HELDOUT MISS [%s] %s\n", a.family.c_str(), a.text.c_str());
  }
  for (const auto& b : corpus::heldout_benign()) {
    bool hit = d.score(b.text).score >= threshold;
    hf += hit;
    ++hb;
    if (verbose && hit) std::printf("HELDOUT FP %s\n", b.text.c_str());
  }
  std::printf("held-out: detected %zu / %zu = %.1f%%; benign flagged %zu / %zu = %.1f%%\n", hc, hn,
              100.0 * double(hc) / double(hn), hf, hb, 100.0 * double(hf) / double(hb));
  return 0;
}

}  // namespace

int contention(int argc, char** argv) {
  const size_t dim = std::stoul(arg(argc, argv, "--dim", "384"));
  const size_t entries = std::stoul(arg(argc, argv, "--entries", "4096"));
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  std::vector<std::vector<float>> centres(64, std::vector<float>(dim));
  for (auto& c : centres) {
    for (float& x : c) x = nd(rng);
  }
  std::vector<std::vector<float>> data(entries + 512);
  for (auto& v : data) {
    v.resize(dim);
    const auto& c = centres[rng() % centres.size()];
    for (size_t i = 0; i < dim; ++i) v[i] = c[i] + 0.35f * nd(rng);
    normalize_vector(v);
  }
  CacheConfig config;
  config.enabled = true;
  config.max_entries = static_cast<int64_t>(entries) * 2;
  config.exact_search_max_entries = 2048;
  SemanticCache cache(config);
  auto key = [](size_t i) {
    CacheKey k;
    k.tenant = "t";
    k.model = "m";
    k.exact = Fingerprint().add(std::to_string(i)).digest();
    return k;
  };
  std::atomic<bool> done{false};
  std::vector<double> lookup_us, insert_us;
  std::thread reader([&] {
    size_t q = 0;
    while (!done.load()) {
      const auto& v = data[entries + (q++ % 512)];
      CacheKey k = key(1'000'000 + q);
      auto t0 = Clock::now();
      auto r = cache.lookup(k, &v, 0.99f);
      lookup_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      if (r.hit && r.hit->similarity > 2.0f) std::printf("?");
    }
  });
  const auto t_fill = Clock::now();
  for (size_t i = 0; i < entries; ++i) {
    auto t0 = Clock::now();
    cache.insert(key(i), &data[i], CachedResponse{"m", "answer", "stop", 1, 1});
    insert_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  const double fill_s = std::chrono::duration<double>(Clock::now() - t_fill).count();
  cache.wait_for_index_builds();
  done = true;
  reader.join();
  // The peer, in the same run: the same lookups on the finished index with nothing else running.
  std::vector<double> quiet_us;
  for (size_t q = 0; q < lookup_us.size(); ++q) {
    const auto& v = data[entries + (q % 512)];
    CacheKey k = key(2'000'000 + q);
    auto t0 = Clock::now();
    (void)cache.lookup(k, &v, 0.99f);
    quiet_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::printf(
      "dim %zu, %zu inserts into one partition (graph at 2048, rebuilt every max(64, 512) tail "
      "vectors) in %.1f s, while one reader looks up without pause\n",
      dim, entries, fill_s);
  std::printf("| | count | p50 | p99 | p99.9 | max |\n|---|---|---|---|---|---|\n");
  for (auto& [name, v] :
       {std::pair<const char*, std::vector<double>&>{"lookup (reader)", lookup_us},
        std::pair<const char*, std::vector<double>&>{"insert (writer)", insert_us},
        std::pair<const char*, std::vector<double>&>{"lookup, alone (peer)", quiet_us}}) {
    std::printf("| %s | %zu | %.1f us | %.1f us | %.1f us | %.1f us |\n", name, v.size(),
                pct(v, 0.5), pct(v, 0.99), pct(v, 0.999), pct(v, 1.0));
  }
  return 0;
}

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "overhead";
  if (mode == "overhead") return overhead(argc, argv);
  if (mode == "index") return index_crossover(argc, argv);
  if (mode == "pii") return pii_eval(argc, argv);
  if (mode == "jailbreak") return jailbreak_eval(argc, argv);
  if (mode == "contention") return contention(argc, argv);
  std::fprintf(stderr, "usage: semantic_bench overhead|index|pii|jailbreak|contention [options]\n");
  return 2;
}
