#include "frontend/postprocessor.h"

#include "tokenizer/utf8.h"

namespace turbine::frontend {
namespace {

void merge_side_channels(api::ChoiceDelta& from, api::ChoiceDelta& into) {
  into.reasoning += from.reasoning;
  for (api::ToolCallDelta& c : from.tool_calls) into.tool_calls.push_back(std::move(c));
}

}  // namespace

api::FinishReason to_api_finish(engine::FinishReason reason) {
  switch (reason) {
    case engine::FinishReason::kStop: return api::FinishReason::kStop;
    case engine::FinishReason::kLength: return api::FinishReason::kLength;
    case engine::FinishReason::kCancelled:
    case engine::FinishReason::kError: return api::FinishReason::kAbort;
    case engine::FinishReason::kNone: break;
  }
  return api::FinishReason::kNone;
}

api::TokenLogprob token_logprob(const tokenizer::Tokenizer& tokenizer,
                                const engine::SampledToken& token) {
  api::TokenLogprob lp;
  lp.token = tokenizer::sanitize_utf8(tokenizer.token_bytes(token.token));
  lp.logprob = token.logprob;
  lp.top.reserve(token.top_logprobs.size());
  for (const auto& [id, v] : token.top_logprobs) {
    lp.top.push_back({tokenizer::sanitize_utf8(tokenizer.token_bytes(id)), v});
  }
  return lp;
}

ChoicePostprocessor::ChoicePostprocessor(int index, const tokenizer::Tokenizer& tokenizer,
                                         int32_t prev_token, PostprocessOptions options,
                                         std::vector<std::unique_ptr<TextProcessor>> processors)
    : index_(index),
      tokenizer_(tokenizer),
      logprobs_(options.logprobs),
      detok_(tokenizer, prev_token, std::move(options.stop), options.skip_special_tokens),
      processors_(std::move(processors)) {}

api::ChoiceDelta ChoicePostprocessor::echo(std::string text) const {
  api::ChoiceDelta d;
  d.index = index_;
  d.content = std::move(text);
  return d;
}

ChoicePostprocessor::Step ChoicePostprocessor::push(const engine::EngineOutput& out) {
  Step step;
  step.delta.index = index_;
  if (finished_) return step;  // outputs racing the cancel of a stop string
  cached_tokens_ = out.cached_tokens;
  std::string text;
  bool stopped = false;
  for (size_t k = 0; k < out.tokens.size() && !stopped; ++k) {
    const engine::SampledToken& t = out.tokens[k];
    ++completion_tokens_;
    if (logprobs_) step.delta.logprobs.push_back(token_logprob(tokenizer_, t));
    // The engine's own stop (EOS, stop_token_ids) is the last token and adds no text.
    if (out.finish == engine::FinishReason::kStop && k + 1 == out.tokens.size()) continue;
    tokenizer::IncrementalDetokenizer::Delta d = detok_.push(t.token);
    text += d.text;
    stopped = d.stopped;
  }
  process(std::move(text), step.delta);
  if (stopped) {
    finish(api::FinishReason::kStop, step.delta);
    step.stop_string = true;
  } else if (out.finish != engine::FinishReason::kNone) {
    if (out.finish == engine::FinishReason::kError) error_ = out.error;
    process(detok_.flush(), step.delta);
    // The flush may complete a stop string (one ending in an incomplete UTF-8 sequence).
    finish(detok_.stopped() ? api::FinishReason::kStop : to_api_finish(out.finish), step.delta);
  }
  step.finished = finished_;
  return step;
}

void ChoicePostprocessor::process(std::string text, api::ChoiceDelta& delta) {
  for (const std::unique_ptr<TextProcessor>& p : processors_) {
    if (text.empty()) return;
    api::ChoiceDelta piece;
    p->push(text, piece);
    merge_side_channels(piece, delta);
    text = std::move(piece.content);
  }
  delta.content += text;
}

void ChoicePostprocessor::finish(api::FinishReason finish, api::ChoiceDelta& delta) {
  delta.finish = finish;
  std::string carry;  // content a processor released, on its way through the later ones
  for (const std::unique_ptr<TextProcessor>& p : processors_) {
    api::ChoiceDelta piece;
    piece.finish = delta.finish;
    if (!carry.empty()) p->push(carry, piece);
    p->flush(piece);
    merge_side_channels(piece, delta);
    delta.finish = piece.finish;
    carry = std::move(piece.content);
  }
  delta.content += carry;
  finished_ = true;
}

}  // namespace turbine::frontend
