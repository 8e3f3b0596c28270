#include "semantic/cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "semantic/fakes.h"
#include "semantic/text.h"
#include "semantic/vector_index.h"

namespace turbine::semantic {
namespace {

struct Fixture {
  int64_t now_ms = 1'000'000;
  CacheConfig config;
  FakeEmbedder embedder;
  std::unique_ptr<SemanticCache> cache;

  explicit Fixture(CacheConfig c = {}) : config(c) {
    config.enabled = true;
    cache = std::make_unique<SemanticCache>(config, [this] { return now_ms; });
  }
  CacheKey key(const std::string& tenant, const std::string& query, const std::string& model = "m",
               const std::string& history = "") {
    CacheKey k;
    k.tenant = tenant;
    k.model = model;
    k.exact = Fingerprint().add(model).add(history).add(query).digest();
    k.compat = Fingerprint().add(model).add(history).digest();
    k.literals = extract_literals(query);
    return k;
  }
  std::vector<float> vec(const std::string& q) {
    auto v = embedder.vector(q);
    normalize_vector(v);
    return v;
  }
  void put(const std::string& tenant, const std::string& q, const std::string& answer,
           const std::string& model = "m") {
    auto v = vec(q);
    cache->insert(key(tenant, q, model), &v, CachedResponse{model, answer, "stop", 5, 3});
  }
  CacheLookup get(const std::string& tenant, const std::string& q, float threshold = 0.8f,
                  const std::string& model = "m", const std::string& history = "") {
    auto v = vec(q);
    return cache->lookup(key(tenant, q, model, history), &v, threshold);
  }
};

TEST(SemanticCache, ExactThenSemanticHit) {
  Fixture f;
  f.put("t1", "What is the capital of France?", "Paris");
  auto exact = f.get("t1", "What is the capital of France?");
  ASSERT_TRUE(exact.hit);
  EXPECT_TRUE(exact.hit->exact);
  EXPECT_EQ(exact.hit->response.content, "Paris");
  auto similar = f.get("t1", "what is the capital of France", 0.8f);
  ASSERT_TRUE(similar.hit);
  EXPECT_FALSE(similar.hit->exact);
  EXPECT_GE(similar.hit->similarity, 0.8f);
  auto unrelated = f.get("t1", "Write a haiku about snow");
  EXPECT_FALSE(unrelated.hit);
  ASSERT_TRUE(unrelated.best_similarity.has_value());
  EXPECT_LT(*unrelated.best_similarity, 0.8f);
  CacheStats s = f.cache->stats();
  EXPECT_EQ(s.exact_hits, 1u);
  EXPECT_EQ(s.semantic_hits, 1u);
  EXPECT_EQ(s.misses, 1u);
}

TEST(SemanticCache, NeverAcrossTenantsOrModels) {
  Fixture f;
  f.put("alice", "What is the capital of France?", "Paris (alice)");
  EXPECT_FALSE(f.get("bob", "What is the capital of France?").hit);  // exact text, other tenant
  EXPECT_FALSE(f.get("bob", "what is the capital of France").hit);   // similar, other tenant
  EXPECT_FALSE(f.get("", "What is the capital of France?").hit);     // anonymous
  EXPECT_FALSE(f.get("alice", "What is the capital of France?", 0.8f, "other-model").hit);
  EXPECT_TRUE(f.get("alice", "What is the capital of France?").hit);
  // Tenant names that would collide if partitions were plain concatenations.
  f.put("ab", "q1", "x", "c");
  EXPECT_FALSE(f.get("a", "q1", 0.8f, "bc").hit);
}

TEST(SemanticCache, LiteralGuard) {
  Fixture f;
  f.put("t", "What is 2+2?", "4");
  auto sim = f.get("t", "What is 2+3?", 0.5f);
  EXPECT_FALSE(sim.hit) << "2+2 must not answer 2+3";
  ASSERT_TRUE(sim.best_similarity.has_value());
  EXPECT_GE(*sim.best_similarity, 0.5f);  // similar enough that only the guard refused it
  EXPECT_EQ(f.cache->stats().literal_rejections, 1u);
  EXPECT_TRUE(f.get("t", "what is 2+2", 0.5f).hit);  // same literals, other spelling
  EXPECT_EQ(extract_literals("what is 2 + 2"), extract_literals("What is 2+2?"));
  EXPECT_EQ(extract_literals("Compare \"foo\" with `bar` at 1,000 and 3.5x2"),
            (std::vector<std::string>{"\"foo", "1000", "3.5x2", "`bar"}));

  CacheConfig off;
  off.literal_guard = false;
  Fixture g(off);
  g.put("t", "What is 2+2?", "4");
  EXPECT_TRUE(g.get("t", "What is 2+3?", 0.5f).hit);  // what the guard prevents
}

TEST(SemanticCache, SemanticHitNeedsTheSameHistoryAndParameters) {
  Fixture f;
  auto v = f.vec("Tell me a joke");
  f.cache->insert(f.key("t", "Tell me a joke", "m", "history A"), &v, {"m", "joke", "stop", 1, 1});
  auto w = f.vec("tell me a joke");
  EXPECT_TRUE(f.cache->lookup(f.key("t", "tell me a joke", "m", "history A"), &w, 0.8f).hit);
  EXPECT_FALSE(f.cache->lookup(f.key("t", "tell me a joke", "m", "history B"), &w, 0.8f).hit);
}

TEST(SemanticCache, TtlExpires) {
  CacheConfig c;
  c.ttl_seconds = 10;
  Fixture f(c);
  f.put("t", "q", "a");
  f.now_ms += 9'999;
  EXPECT_TRUE(f.get("t", "q").hit);
  f.now_ms += 2;
  EXPECT_FALSE(f.get("t", "q").hit);
  EXPECT_EQ(f.cache->stats().expirations, 1u);
  EXPECT_EQ(f.cache->stats().entries, 0u);
}

TEST(SemanticCache, LruEvictsTheLeastRecentlyUsed) {
  CacheConfig c;
  c.max_entries = 2;
  Fixture f(c);
  f.put("t", "alpha question", "A");
  f.put("t", "beta question", "B");
  ASSERT_TRUE(f.get("t", "alpha question").hit);  // alpha is now the most recent
  f.put("t", "gamma question", "C");              // evicts beta
  EXPECT_TRUE(f.get("t", "alpha question").hit);
  EXPECT_FALSE(f.cache->lookup(f.key("t", "beta question"), nullptr, 0.99f).hit);
  EXPECT_TRUE(f.get("t", "gamma question").hit);
  EXPECT_EQ(f.cache->stats().evictions, 1u);
  EXPECT_EQ(f.cache->stats().entries, 2u);
  // A smaller max_entries from a reload evicts at once.
  CacheConfig smaller = f.config;
  smaller.max_entries = 1;
  f.cache->reconfigure(smaller);
  EXPECT_EQ(f.cache->stats().entries, 1u);
}

TEST(SemanticCache, ReinsertReplaces) {
  Fixture f;
  f.put("t", "q", "old");
  f.put("t", "q", "new");
  EXPECT_EQ(f.cache->stats().entries, 1u);
  EXPECT_EQ(f.get("t", "q").hit->response.content, "new");
}

// The HNSW path gives the same nearest neighbours as the exact scan on well-separated data.
TEST(VectorIndex, HnswMatchesExactAndSurvivesRemovals) {
  const size_t dim = 32, n = 600;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<std::vector<float>> vs(n, std::vector<float>(dim));
  for (auto& v : vs) {
    for (float& x : v) x = nd(rng);
    normalize_vector(v);
  }
  VectorIndex exact(dim, 1'000'000, {});
  VectorIndex hnsw(dim, 100, {16, 200, 64});
  for (size_t i = 0; i < n; ++i) {
    exact.add(i, vs[i].data());
    hnsw.add(i, vs[i].data());
  }
  EXPECT_FALSE(exact.uses_hnsw());
  EXPECT_TRUE(hnsw.uses_hnsw());
  size_t agree = 0;
  for (size_t i = 0; i < n; i += 7) {
    auto a = exact.search(vs[i].data(), 1);
    auto b = hnsw.search(vs[i].data(), 1);
    ASSERT_EQ(a.size(), 1u);
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(a[0].first, i);
    agree += a[0].first == b[0].first;
    EXPECT_NEAR(b[0].second, 1.0f, 1e-4);
  }
  EXPECT_EQ(agree, (n + 6) / 7);
  for (size_t i = 0; i < n; i += 2) hnsw.remove(i);
  EXPECT_EQ(hnsw.size(), n / 2);
  auto r = hnsw.search(vs[1].data(), 3);
  ASSERT_FALSE(r.empty());
  EXPECT_EQ(r[0].first, 1u);
  for (const auto& [id, sim] : r) EXPECT_EQ(id % 2, 1u);  // removed ids never come back
  for (size_t i = 1; i < n; i += 2) hnsw.remove(i);
  EXPECT_FALSE(hnsw.uses_hnsw());  // dropped below exact_max / 2
  EXPECT_TRUE(hnsw.search(vs[1].data(), 3).empty());
}

std::vector<std::vector<float>> random_unit_vectors(size_t n, size_t dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<std::vector<float>> vs(n, std::vector<float>(dim));
  for (auto& v : vs) {
    for (float& x : v) x = nd(rng);
    normalize_vector(v);
  }
  return vs;
}

// Build jobs the test runs when it chooses: "while the graph is being built".
struct ManualExecutor {
  std::vector<std::function<void()>> jobs;
  BuildExecutor executor() {
    return [this](std::function<void()> job) { jobs.push_back(std::move(job)); };
  }
  void run_all() {
    while (!jobs.empty()) {
      auto job = std::move(jobs.front());
      jobs.erase(jobs.begin());
      job();
    }
  }
};

// The graph is built aside: until it is published every vector is found by the exact scan, and
// vectors added or removed during the build are right after it is published.
TEST(VectorIndex, BuildsTheGraphAsideAndKeepsSearching) {
  const size_t dim = 16, exact_max = 100;
  auto vs = random_unit_vectors(260, dim, 2);
  ManualExecutor manual;
  VectorIndex index(dim, exact_max, {16, 100, 64}, manual.executor());
  for (size_t i = 0; i < exact_max; ++i) index.add(i, vs[i].data());
  ASSERT_EQ(manual.jobs.size(), 1u);  // the build is queued, not run by add()
  EXPECT_TRUE(index.building());
  EXPECT_FALSE(index.uses_hnsw());
  // Meanwhile: more vectors, a removal, searches that see all of it.
  for (size_t i = exact_max; i < exact_max + 20; ++i) index.add(i, vs[i].data());
  index.remove(3);
  EXPECT_EQ(manual.jobs.size(), 1u);  // one build at a time
  for (size_t i : {0ul, 50ul, 110ul, 119ul}) {
    auto r = index.search(vs[i].data(), 1);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].first, i);
  }
  for (const auto& [id, sim] : index.search(vs[3].data(), 5)) EXPECT_NE(id, 3u);

  manual.run_all();
  EXPECT_TRUE(index.uses_hnsw());
  EXPECT_FALSE(index.building());
  EXPECT_EQ(index.size(), exact_max + 19);
  EXPECT_EQ(index.tail_size(), 20u);  // added after the snapshot: searched exactly
  for (size_t i : {0ul, 50ul, 99ul, 110ul, 119ul}) {
    auto r = index.search(vs[i].data(), 1);
    ASSERT_EQ(r.size(), 1u) << i;
    EXPECT_EQ(r[0].first, i);
    EXPECT_NEAR(r[0].second, 1.0f, 1e-4);
  }
  for (const auto& [id, sim] : index.search(vs[3].data(), 5)) EXPECT_NE(id, 3u);  // removed

  // The tail reaching max(64, exact_max / 4) starts a rebuild over every live vector.
  for (size_t i = exact_max + 20; i < exact_max + 64; ++i) index.add(i, vs[i].data());
  ASSERT_EQ(manual.jobs.size(), 1u);
  index.add(200, vs[200].data());  // during the rebuild
  manual.run_all();
  EXPECT_EQ(index.tail_size(), 1u);
  auto r = index.search(vs[200].data(), 1);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].first, 200u);
}

// A graph dropped (the index shrank below exact_max / 2) while a rebuild ran is not published.
TEST(VectorIndex, ABuildOvertakenByAShrinkIsDropped) {
  const size_t dim = 8, exact_max = 40, n = exact_max + 64;
  auto vs = random_unit_vectors(n, dim, 3);
  ManualExecutor manual;
  VectorIndex index(dim, exact_max, {8, 50, 32}, manual.executor());
  for (size_t i = 0; i < exact_max; ++i) index.add(i, vs[i].data());
  manual.run_all();
  ASSERT_TRUE(index.uses_hnsw());
  for (size_t i = exact_max; i < n; ++i) index.add(i, vs[i].data());
  ASSERT_EQ(manual.jobs.size(), 1u);  // the tail of 64 starts a rebuild
  for (size_t i = 0; i < n - 10; ++i) index.remove(i);
  EXPECT_FALSE(index.uses_hnsw());  // dropped below exact_max / 2
  manual.run_all();                 // the stale rebuild publishes nothing
  EXPECT_FALSE(index.uses_hnsw());
  EXPECT_FALSE(index.building());
  EXPECT_EQ(index.size(), 10u);
  EXPECT_EQ(index.tail_size(), 10u);
  for (size_t i = n - 10; i < n; ++i) {
    auto r = index.search(vs[i].data(), 1);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].first, i);
  }
}

// Inserts, removals and searches from several threads while the cache's builder thread builds
// and rebuilds graphs: every result is a live or recently live id, and each thread's own
// vectors are found once it added them.
TEST(VectorIndex, ConcurrentAddsRemovesAndSearches) {
  const size_t dim = 24, per_thread = 300, threads = 3;
  auto vs = random_unit_vectors(per_thread * threads, dim, 4);
  IndexBuilder builder;
  VectorIndex index(dim, 64, {16, 100, 64}, builder.executor());
  std::atomic<int> failures{0};
  std::vector<std::thread> ts;
  for (size_t t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (size_t i = t * per_thread; i < (t + 1) * per_thread; ++i) {
        index.add(i, vs[i].data());
        auto r = index.search(vs[i].data(), 1);
        if (r.empty() || r[0].first != i) ++failures;
        if (i % 3 == 0) index.remove(i);
        for (const auto& [id, sim] : index.search(vs[i].data(), 4)) {
          if (id >= vs.size()) ++failures;
        }
      }
    });
  }
  for (auto& th : ts) th.join();
  builder.drain();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(index.size(), per_thread * threads * 2 / 3);
  EXPECT_TRUE(index.uses_hnsw());
  for (size_t i = 0; i < vs.size(); i += 5) {
    auto r = index.search(vs[i].data(), 1);
    ASSERT_EQ(r.size(), 1u);
    if (i % 3 == 0) {
      EXPECT_NE(r[0].first, i);
    } else {
      EXPECT_EQ(r[0].first, i);
    }
  }
}

// The cache answers semantic lookups while a partition's graph build is pending, and after.
TEST(SemanticCache, LookupsDoNotWaitForTheIndexBuild) {
  CacheConfig config;
  config.enabled = true;
  config.exact_search_max_entries = 16;
  config.max_entries = 1000;
  ManualExecutor manual;
  FakeEmbedder embedder;
  SemanticCache cache(config, {}, manual.executor());
  auto put = [&](const std::string& q) {
    auto v = embedder.vector(q);
    normalize_vector(v);
    CacheKey k;
    k.tenant = "t";
    k.model = "m";
    k.exact = Fingerprint().add(q).digest();
    k.literals = extract_literals(q);
    cache.insert(k, &v, CachedResponse{"m", "answer to " + q, "stop", 1, 1});
  };
  auto get = [&](const std::string& q) {
    auto v = embedder.vector(q);
    normalize_vector(v);
    CacheKey k;
    k.tenant = "t";
    k.model = "m";
    k.exact = Fingerprint().add("other").add(q).digest();  // never an exact hit
    k.literals = extract_literals(q);
    return cache.lookup(k, &v, 0.99f);
  };
  const std::vector<std::string> words = {
      "alpha",  "bravo", "charlie", "delta", "echo",     "foxtrot", "golf", "hotel",  "india",
      "juliet", "kilo",  "lima",    "mike",  "november", "oscar",   "papa", "quebec", "romeo"};
  for (const auto& w : words) put("tell me about " + w + " please");
  ASSERT_EQ(manual.jobs.size(), 1u);
  auto pending = get("tell me about kilo please");
  ASSERT_TRUE(pending.hit);
  EXPECT_EQ(pending.hit->response.content, "answer to tell me about kilo please");
  manual.run_all();
  auto built = get("tell me about romeo please");
  ASSERT_TRUE(built.hit);
  EXPECT_EQ(built.hit->response.content, "answer to tell me about romeo please");
}

}  // namespace
}  // namespace turbine::semantic
