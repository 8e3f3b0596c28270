// AsyncEngine::stop() (issue 18, item 7): a request ended because the caller's stop string matched
// frees its blocks like a cancellation but is not counted as one, and its last output says kStop.
#include <gtest/gtest.h>

#include <future>

#include "../model/model_test_util.h"
#include "engine/engine.h"
#include "model/model.h"

namespace turbine::engine {
namespace {

using turbine::testing::stories_gguf;

TEST(EngineStopTest, StopEndsARequestWithoutCountingACancellation) {
  TURBINE_REQUIRE_ASSET(stories_gguf());
  auto m = model::load_model(stories_gguf());
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  CpuBackendOptions bo;
  bo.n_threads = 1;
  bo.max_num_seqs = 4;
  auto b = make_cpu_backend(**m, bo);
  ASSERT_TRUE(b.has_value()) << b.status().to_string();
  EngineOptions eo;
  eo.max_num_seqs = 4;
  Engine engine(std::move(*b), (*m)->config().n_vocab, eo);

  // Each request sends its first output, then waits to be ended by `end(id)`.
  auto run = [&](uint64_t id, auto end) {
    auto first = std::make_shared<std::promise<void>>();
    auto last = std::make_shared<std::promise<FinishReason>>();
    auto seen = std::make_shared<bool>(false);
    EngineRequest r;
    r.id = id;
    r.prompt = {1, 2, 3, 4};
    r.params.temperature = 0;
    r.params.max_tokens = 400;
    r.params.ignore_eos = true;
    r.on_output = [first, last, seen](EngineOutput&& out) {
      if (!*seen) {
        *seen = true;
        first->set_value();
      }
      if (out.finish != FinishReason::kNone) last->set_value(out.finish);
    };
    EXPECT_TRUE(engine.submit(std::move(r)).is_ok());
    first->get_future().wait();
    end(id);
    return last->get_future().get();
  };
  EXPECT_EQ(run(1, [&](uint64_t id) { engine.stop(id); }), FinishReason::kStop);
  EXPECT_EQ(engine.stats().cancelled, 0u);
  EXPECT_EQ(run(2, [&](uint64_t id) { engine.cancel(id); }), FinishReason::kCancelled);
  EXPECT_EQ(engine.stats().cancelled, 1u);
  engine.shutdown();
}

}  // namespace
}  // namespace turbine::engine
