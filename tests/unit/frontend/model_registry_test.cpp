#include "frontend/model_registry.h"

#include <gtest/gtest.h>

namespace turbine::frontend {
namespace {

using Clock = ModelRegistry::Clock;

ModelPtr entry(std::string name) {
  auto m = std::make_shared<ModelEntry>();
  m->name = std::move(name);
  return m;
}

class ModelRegistryTest : public ::testing::Test {
 protected:
  Clock::time_point now_ = Clock::time_point{} + std::chrono::hours(1);
  ModelRegistry registry_{std::chrono::seconds(600), [this] { return now_; }};
};

TEST_F(ModelRegistryTest, FindsServedModelsAndTheDefault) {
  registry_.add(entry("b"));
  registry_.add(entry("a"));
  ASSERT_TRUE(registry_.find("a").has_value());
  EXPECT_EQ((*registry_.find(""))->name, "b");  // the first added
  EXPECT_EQ(registry_.names(), (std::vector<std::string>{"a", "b"}));
  auto unknown = registry_.find("zzz");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(unknown.status().field(), "model");
}

TEST_F(ModelRegistryTest, RemovedModelIsUnavailableForTheRetentionThenUnknown) {
  registry_.add(entry("a"));
  registry_.add(entry("b"));
  registry_.remove("a");
  auto r = registry_.find("a");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().field(), "model");
  // Model lookups by id (GET /v1/models/{id}) only know served models.
  EXPECT_EQ(registry_.find_served("a").status().code(), StatusCode::kNotFound);
  EXPECT_EQ((*registry_.find(""))->name, "b");  // the default skips removed models
  now_ += std::chrono::seconds(599);
  EXPECT_EQ(registry_.find("a").status().code(), StatusCode::kUnavailable);
  now_ += std::chrono::seconds(2);
  EXPECT_EQ(registry_.find("a").status().code(), StatusCode::kNotFound);
}

TEST_F(ModelRegistryTest, ReaddedModelIsServedAgain) {
  registry_.add(entry("a"));
  registry_.remove("a");
  registry_.add(entry("a"));
  EXPECT_TRUE(registry_.find("a").has_value());
  registry_.remove("never-served");  // no memory of names that were never served
  EXPECT_EQ(registry_.find("never-served").status().code(), StatusCode::kNotFound);
}

TEST_F(ModelRegistryTest, ReplacingKeepsRunningRequestsOnTheirEntry) {
  registry_.add(entry("a"));
  ModelPtr held = *registry_.find("a");
  registry_.add(entry("a"));
  EXPECT_NE(held.get(), registry_.find("a")->get());
  EXPECT_EQ(held->name, "a");
}

}  // namespace
}  // namespace turbine::frontend
