// The postprocessor chain of one choice: engine tokens -> api::ChoiceDeltas.
//
//   tokens -> IncrementalDetokenizer (UTF-8-safe text, stop strings) -> TextProcessor* -> delta
//
// The detokenizer releases only text that is final (complete UTF-8, no possible stop-string
// prefix). Text processors (a reasoning parser, then a tool-call parser: src/parsers/) each take
// the content text of the stage before them and split it into content, reasoning and tool-call
// pieces; what a processor leaves as content goes on to the next one. At the end each processor
// flushes what it held back and may change the finish reason (tool calls: "tool_calls").
//
// Threads: a ChoicePostprocessor belongs to one request and runs on its strand; it never touches
// the engine (the caller cancels the engine request when push() says a stop string completed).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/delta.h"
#include "common/status.h"
#include "engine/async_engine.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace turbine::frontend {

// A text stage after detokenization. Implementations hold whatever text may still turn out to be
// markup and release it once it cannot.
class TextProcessor {
 public:
  virtual ~TextProcessor() = default;
  // New text (valid UTF-8, split anywhere). Appends to out.content / out.reasoning /
  // out.tool_calls what is now known; leaves out.index, out.logprobs and out.finish alone.
  virtual void push(std::string_view text, api::ChoiceDelta& out) = 0;
  // End of generation: releases everything held. `out.finish` holds the reason so far; a
  // tool-call parser that produced calls sets it to kToolCalls when the model stopped by itself.
  virtual void flush(api::ChoiceDelta& out) = 0;
};

// What a factory may look at to pick and configure processors for one choice.
struct TextProcessorContext {
  bool chat = false;
  std::string_view tools_json;   // the request's `tools`, "" when none
  std::string_view prompt_text;  // the rendered prompt (ends inside <think>? ...), "" for ids
};
// Builds a choice's processors, in order (empty: none). Called on the request's strand.
using TextProcessorFactory =
    std::function<std::vector<std::unique_ptr<TextProcessor>>(const TextProcessorContext&)>;

struct PostprocessOptions {
  std::vector<std::string> stop;  // stop strings (the text ends before the first one found)
  bool skip_special_tokens = true;
  bool logprobs = false;  // convert each token's logprobs into the deltas
};

api::FinishReason to_api_finish(engine::FinishReason reason);

class ChoicePostprocessor {
 public:
  // `prev_token`: the prompt's last token (-1 for none), for the first piece's leading space.
  ChoicePostprocessor(int index, const tokenizer::Tokenizer& tokenizer, int32_t prev_token,
                      PostprocessOptions options,
                      std::vector<std::unique_ptr<TextProcessor>> processors = {});

  struct Step {
    api::ChoiceDelta delta;    // may be empty (text held back)
    bool finished = false;     // the choice's last step: delta.finish is set
    bool stop_string = false;  // finished by a stop string: cancel the engine request
  };
  // One engine output. After the choice finished, outputs are ignored (an empty step).
  Step push(const engine::EngineOutput& out);

  // The choice's first delta when the prompt is echoed (completions with echo).
  api::ChoiceDelta echo(std::string text) const;

  int index() const { return index_; }
  bool finished() const { return finished_; }
  int completion_tokens() const { return completion_tokens_; }
  int cached_tokens() const { return cached_tokens_; }
  // The engine's error, when the choice ended with FinishReason::kError.
  const std::optional<Status>& error() const { return error_; }

 private:
  // Runs `text` through the processors into `delta`.
  void process(std::string text, api::ChoiceDelta& delta);
  // Flushes the detokenizer and the processors into `delta` with `finish` as the reason.
  void finish(api::FinishReason finish, api::ChoiceDelta& delta);

  const int index_;
  const tokenizer::Tokenizer& tokenizer_;
  const bool logprobs_;
  tokenizer::IncrementalDetokenizer detok_;
  std::vector<std::unique_ptr<TextProcessor>> processors_;
  bool finished_ = false;
  int completion_tokens_ = 0;
  int cached_tokens_ = 0;
  std::optional<Status> error_;
};

// One token's logprobs as the API shows them (pieces as sanitized UTF-8).
api::TokenLogprob token_logprob(const tokenizer::Tokenizer& tokenizer,
                                const engine::SampledToken& token);

}  // namespace turbine::frontend
