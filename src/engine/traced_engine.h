// TracedEngine: an AsyncEngine decorator that records one span per request.
//
// A worker wraps its engine in one, so every request it serves (whatever the request plane)
// gets a "generate" span: a child of the context the request carries (the router's span), from
// submit to the final output, with the token counts and the finish reason. The wrapped engine
// sees the span's context as the request's.
#pragma once

#include <memory>
#include <string>

#include "common/trace.h"
#include "engine/async_engine.h"

namespace turbine::engine {

class TracedEngine final : public AsyncEngine {
 public:
  // `attributes` are set on every span (e.g. the worker's instance id).
  TracedEngine(std::shared_ptr<AsyncEngine> inner, std::shared_ptr<trace::Tracer> tracer,
               std::string span_name = "generate", std::vector<trace::Attribute> attributes = {});

  Status submit(EngineRequest request) override;
  void cancel(uint64_t id) override { inner_->cancel(id); }
  void stop(uint64_t id) override { inner_->stop(id); }
  void shutdown() override { inner_->shutdown(); }
  EngineStats stats() const override { return inner_->stats(); }
  int max_context() const override { return inner_->max_context(); }
  int num_slots() const override { return inner_->num_slots(); }
  int block_size() const override { return inner_->block_size(); }

 private:
  const std::shared_ptr<AsyncEngine> inner_;
  const std::shared_ptr<trace::Tracer> tracer_;
  const std::string span_name_;
  const std::vector<trace::Attribute> attributes_;
};

}  // namespace turbine::engine
