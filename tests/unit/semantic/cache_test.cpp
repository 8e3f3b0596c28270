#include "semantic/cache.h"

#include <gtest/gtest.h>

#include <random>

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

}  // namespace
}  // namespace turbine::semantic
