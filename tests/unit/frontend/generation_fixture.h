// The generation stage without HTTP or an engine thread, as generation_test and
// agents_generation_test drive it: a fake engine the test feeds, a fake ResponseWriter, one
// io_context on the test thread, and a model "m" over the fake tokenizer.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>

#include <gtest/gtest.h>

#include "fakes.h"
#include "frontend/generation.h"
#include "frontend/openai_protocol.h"

namespace turbine::frontend::testing {

class GenerationFixture : public ::testing::Test {
 protected:
  // `first_id`: the engine request id of the first generation; `configure` adjusts the model
  // (parsers, limits) before it is shared.
  explicit GenerationFixture(uint64_t first_id,
                             const std::function<void(ModelEntry&)>& configure = {})
      : next_id_(first_id) {
    auto m = std::make_shared<ModelEntry>();
    m->name = "m";
    m->tokenizer = tok_;
    m->engine = engine_;
    m->max_context = 64;
    m->max_token_bytes = longest_token_bytes(*tok_);
    if (configure) configure(*m);
    model_ = m;
  }

  // `request` prepared as the preprocessor would.
  Generation generation(const ProtocolAdapter& protocol, const ParsedRequest& request) {
    auto prepared = Preprocessor().prepare(request, *model_, protocol.prompt_field());
    EXPECT_TRUE(prepared.has_value()) << prepared.status().to_string();
    Generation g;
    g.protocol = &protocol;
    g.model = model_;
    g.request = std::make_shared<const ParsedRequest>(request);
    if (prepared) g.prepared = std::move(*prepared);
    return g;
  }

  // One user message "hi" to model "m".
  static api::ChatRequest chat_request(bool stream, int max_tokens) {
    api::ChatRequest r;
    r.model = "m";
    api::ChatMessage msg;
    msg.role = "user";
    msg.content = "hi";
    r.messages.push_back(msg);
    r.sampling.stream = stream;
    r.sampling.max_tokens = max_tokens;
    return r;
  }

  void start(Generation g) { loop_.spawn(run_generation(env_, std::move(g), writer_)); }
  int32_t id(std::string_view piece) const { return tok_->id(piece); }

  std::shared_ptr<FakeTokenizer> tok_ = std::make_shared<FakeTokenizer>();
  std::shared_ptr<FakeEngine> engine_ = std::make_shared<FakeEngine>();
  ModelPtr model_;
  metrics::FrontendMetrics metrics_{"m"};
  trace::Tracer tracer_;
  std::atomic<uint64_t> next_id_;
  std::atomic<int> inflight_{0};
  GenerationEnv env_{metrics_, tracer_, next_id_, inflight_};
  FakeWriter writer_;
  Loop loop_;
  std::unique_ptr<ProtocolAdapter> chat_ = make_openai_chat_adapter();
  std::unique_ptr<ProtocolAdapter> completions_ = make_openai_completions_adapter();
};

}  // namespace turbine::frontend::testing
