// Microbenchmarks of the KV router's indexer (Google Benchmark; not run by ctest).
//
//   build-router/router_bench [--benchmark_filter=...]
//
// Index shape (issue 6): 64 workers x 16,384 blocks = 1,048,576 indexed blocks. Each worker
// holds 128 sequences of 128 blocks; every sequence starts with one of 128 shared 32-block
// prefixes ("system prompts", so those nodes are held by all 64 workers) followed by 96 blocks
// of its own. Queries are 128 blocks: a cached sequence (full match on one worker, 32 blocks on
// all), a shared prefix with a new tail, or nothing cached. find_matches is timed one call at a
// time to report p50/p99; ingestion counts blocks per second of BlockStored events of 16 blocks
// (one prefill chunk) chained by parent hash.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <vector>

#include "kv/block_hash.h"
#include "kv/protocol.h"
#include "router/kv_indexer.h"

namespace {

using turbine::router::KvIndexer;
namespace kv = turbine::kv;

constexpr int kWorkers = 64;
constexpr int kSeqPerWorker = 128;
constexpr int kSeqBlocks = 128;
constexpr int kPrefixBlocks = 32;
constexpr int kGroups = 128;  // worker w's sequence j uses prefix (w + j) % 128: all distinct
constexpr int kEventBlocks = 16;

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Local hashes of one sequence: prefix group g, then its own tail.
std::vector<uint64_t> sequence_local(int group, uint64_t tail_seed) {
  std::vector<uint64_t> h(kSeqBlocks);
  uint64_t gs = 0x1000 + static_cast<uint64_t>(group);
  for (int i = 0; i < kPrefixBlocks; ++i) h[i] = splitmix(gs);
  for (int i = kPrefixBlocks; i < kSeqBlocks; ++i) h[i] = splitmix(tail_seed);
  return h;
}

struct Workload {
  // Events per worker, in order.
  std::vector<std::vector<kv::KvEvent>> events;
  std::vector<std::vector<uint64_t>> cached;  // some sequences that are in the index
  size_t blocks = 0;
};

const Workload& workload() {
  static const Workload w = [] {
    Workload w;
    w.events.resize(kWorkers);
    for (int wk = 0; wk < kWorkers; ++wk) {
      uint64_t event_id = 0;
      for (int j = 0; j < kSeqPerWorker; ++j) {
        const int group = (wk + j) % kGroups;
        const auto local = sequence_local(group, (uint64_t(wk) << 32) | uint64_t(j));
        std::vector<uint64_t> seq(local.size());
        for (size_t i = 0; i < local.size(); ++i)
          seq[i] = i == 0 ? local[0] : kv::chain_block_hash(seq[i - 1], local[i]);
        if (j % 16 == 0 && w.cached.size() < 256) w.cached.push_back(local);
        for (int b = 0; b < kSeqBlocks; b += kEventBlocks) {
          kv::BlockStored s;
          if (b > 0) s.parent_hash = seq[b - 1];
          for (int i = b; i < b + kEventBlocks; ++i) s.blocks.push_back({seq[i], local[i]});
          s.block_size = 16;
          w.events[wk].push_back(kv::KvEvent{kv::kKvEventsVersion, event_id++, std::move(s)});
          w.blocks += kEventBlocks;
        }
      }
    }
    return w;
  }();
  return w;
}

void ingest(KvIndexer& idx, const Workload& w) {
  for (int wk = 0; wk < kWorkers; ++wk)
    for (const auto& e : w.events[wk]) idx.apply(static_cast<uint64_t>(wk) + 1, e);
}

KvIndexer& full_index() {
  static KvIndexer* idx = [] {
    auto* i = new KvIndexer();
    ingest(*i, workload());
    return i;
  }();
  return *idx;
}

void BM_Ingest(benchmark::State& state) {
  const Workload& w = workload();
  for (auto _ : state) {
    state.PauseTiming();
    auto idx = std::make_unique<KvIndexer>();
    state.ResumeTiming();
    ingest(*idx, w);
    benchmark::DoNotOptimize(idx->stats().indexed_blocks);
    state.PauseTiming();
    idx.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * w.blocks));
  state.counters["blocks"] = static_cast<double>(w.blocks);
}
BENCHMARK(BM_Ingest)->Unit(benchmark::kMillisecond)->Iterations(3);

// Removal of every block again (BlockRemoved of 16 blocks), from a full index.
void BM_Remove(benchmark::State& state) {
  const Workload& w = workload();
  for (auto _ : state) {
    state.PauseTiming();
    auto idx = std::make_unique<KvIndexer>();
    ingest(*idx, w);
    state.ResumeTiming();
    for (int wk = 0; wk < kWorkers; ++wk) {
      for (const auto& e : w.events[wk]) {
        const auto& s = std::get<kv::BlockStored>(e.data);
        std::vector<uint64_t> hs;
        for (const auto& b : s.blocks) hs.push_back(b.block_hash);
        idx->remove(static_cast<uint64_t>(wk) + 1, hs);
      }
    }
    benchmark::DoNotOptimize(idx->stats().nodes);
    state.PauseTiming();
    idx.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * w.blocks));
}
BENCHMARK(BM_Remove)->Unit(benchmark::kMillisecond)->Iterations(3);

// Steady state: the index's maps already have their working size (every block removed and
// stored again), as in a long-running router.
void BM_IngestSteady(benchmark::State& state) {
  const Workload& w = workload();
  auto idx = std::make_unique<KvIndexer>();
  ingest(*idx, w);
  for (auto _ : state) {
    state.PauseTiming();
    for (int wk = 0; wk < kWorkers; ++wk) {
      for (const auto& e : w.events[wk]) {
        const auto& s = std::get<kv::BlockStored>(e.data);
        std::vector<uint64_t> hs;
        for (const auto& b : s.blocks) hs.push_back(b.block_hash);
        idx->remove(static_cast<uint64_t>(wk) + 1, hs);
      }
    }
    state.ResumeTiming();
    for (int wk = 0; wk < kWorkers; ++wk)
      for (const auto& e : w.events[wk])
        idx->store(static_cast<uint64_t>(wk) + 1, std::get<kv::BlockStored>(e.data));
    benchmark::DoNotOptimize(idx->stats().indexed_blocks);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * w.blocks));
}
BENCHMARK(BM_IngestSteady)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_Memory(benchmark::State& state) {
  const Workload& w = workload();
  for (auto _ : state) {
    malloc_trim(0);
    // uordblks: heap in use from the arena; hblkhd: large blocks served by mmap.
    const auto in_use = [] {
      const struct mallinfo2 m = mallinfo2();
      return m.uordblks + m.hblkhd;
    };
    const size_t before = in_use();
    auto idx = std::make_unique<KvIndexer>();
    ingest(*idx, w);
    const size_t after = in_use();
    const auto st = idx->stats();
    state.counters["indexed_blocks"] = static_cast<double>(st.indexed_blocks);
    state.counters["nodes"] = static_cast<double>(st.nodes);
    state.counters["heap_B_per_block"] =
        static_cast<double>(after - before) / static_cast<double>(st.indexed_blocks);
    state.counters["struct_B_per_block"] =
        static_cast<double>(idx->memory_bytes()) / static_cast<double>(st.indexed_blocks);
  }
}
BENCHMARK(BM_Memory)->Unit(benchmark::kMillisecond)->Iterations(1);

// kind 0: a cached sequence; 1: shared prefix + new tail; 2: nothing cached; 3: a mix (1/3 each).
void BM_FindMatches(benchmark::State& state) {
  KvIndexer& idx = full_index();
  const Workload& w = workload();
  const int kind = static_cast<int>(state.range(0));
  std::vector<std::vector<uint64_t>> queries;
  uint64_t seed = 99;
  for (int q = 0; q < 300; ++q) {
    const int k = kind == 3 ? q % 3 : kind;
    if (k == 0) {
      queries.push_back(w.cached[static_cast<size_t>(q) % w.cached.size()]);
    } else if (k == 1) {
      queries.push_back(sequence_local(q % kGroups, 0xabc000 + static_cast<uint64_t>(q)));
    } else {
      std::vector<uint64_t> h(kSeqBlocks);
      for (auto& x : h) x = splitmix(seed);
      queries.push_back(std::move(h));
    }
  }
  std::vector<turbine::router::WorkerMatch> out;
  std::vector<double> ns;
  ns.reserve(1 << 20);
  size_t i = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    idx.find_matches(queries[i++ % queries.size()], out);
    const auto t1 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(out.data());
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  std::sort(ns.begin(), ns.end());
  auto pct = [&](double p) { return ns[static_cast<size_t>(p * (ns.size() - 1))] / 1000.0; };
  state.counters["p50_us"] = pct(0.50);
  state.counters["p99_us"] = pct(0.99);
  state.counters["max_us"] = ns.back() / 1000.0;
  state.counters["matches"] = static_cast<double>(out.size());
}
BENCHMARK(BM_FindMatches)->Arg(0)->Arg(1)->Arg(2)->Arg(3)->Unit(benchmark::kMicrosecond);

// Worst case: all 64 workers hold the whole 128-block query.
void BM_FindMatchesAllWorkersFull(benchmark::State& state) {
  KvIndexer idx;
  const auto local = sequence_local(0, 777);
  std::vector<uint64_t> seq(local.size());
  for (size_t i = 0; i < local.size(); ++i)
    seq[i] = i == 0 ? local[0] : kv::chain_block_hash(seq[i - 1], local[i]);
  kv::BlockStored s;
  for (size_t i = 0; i < local.size(); ++i) s.blocks.push_back({seq[i], local[i]});
  for (uint64_t wk = 1; wk <= kWorkers; ++wk) idx.store(wk, s);
  std::vector<turbine::router::WorkerMatch> out;
  std::vector<double> ns;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    idx.find_matches(local, out);
    const auto t1 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(out.data());
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  std::sort(ns.begin(), ns.end());
  state.counters["p50_us"] = ns[ns.size() / 2] / 1000.0;
  state.counters["p99_us"] = ns[(ns.size() - 1) * 99 / 100] / 1000.0;
}
BENCHMARK(BM_FindMatchesAllWorkersFull)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
