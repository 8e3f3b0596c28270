#include "engine/traced_engine.h"

namespace turbine::engine {

TracedEngine::TracedEngine(std::shared_ptr<AsyncEngine> inner,
                           std::shared_ptr<trace::Tracer> tracer, std::string span_name,
                           std::vector<trace::Attribute> attributes)
    : inner_(std::move(inner)),
      tracer_(std::move(tracer)),
      span_name_(std::move(span_name)),
      attributes_(std::move(attributes)) {}

Status TracedEngine::submit(EngineRequest request) {
  if (!tracer_ || !tracer_->enabled()) return inner_->submit(std::move(request));
  // The span outlives this call: it ends with the request's final output.
  auto span = std::make_shared<trace::Span>(
      tracer_->start_span(span_name_, trace::SpanKind::kServer, request.trace));
  for (const trace::Attribute& a : attributes_) {
    std::visit([&](const auto& v) { span->set_attribute(a.key, v); }, a.value);
  }
  span->set_attribute("gen_ai.usage.input_tokens", static_cast<int64_t>(request.prompt.size()));
  span->set_attribute("gen_ai.request.max_tokens", static_cast<int64_t>(request.params.max_tokens));
  request.trace = span->context();
  OutputCallback downstream = std::move(request.on_output);
  request.on_output = [span, downstream = std::move(downstream)](EngineOutput&& out) {
    if (out.finish != FinishReason::kNone) {
      span->set_attribute("gen_ai.usage.output_tokens",
                          static_cast<int64_t>(out.completion_tokens));
      span->set_attribute("turbine.cached_tokens", static_cast<int64_t>(out.cached_tokens));
      span->set_attribute("gen_ai.response.finish_reason",
                          std::string(finish_reason_name(out.finish)));
      if (out.finish == FinishReason::kError) span->set_error(out.error.message());
      span->end();
    }
    downstream(std::move(out));
  };
  Status st = inner_->submit(std::move(request));
  if (!st.is_ok()) {
    span->set_error(st.message());
    span->end();
  }
  return st;
}

}  // namespace turbine::engine
