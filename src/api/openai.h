// OpenAI protocol: request parsing + validation, response and SSE chunk builders.
//
// Parsing turns an HTTP body into plain structs and rejects bad input with kInvalidArgument
// naming the offending `param` (Status::field()), so api::error_json gives the same 400 the
// OpenAI API would. Numbers given as floats where an integer is expected are accepted when
// integral (10.0). Everything here is pure and knows nothing about sockets or the engine; safe on
// any thread.
//
// No field is accepted and then ignored (issue 18 item 2). Every field the parsers know is one of:
// - honoured: model, prompt (completions), messages (chat), max_tokens, max_completion_tokens
//   (chat), temperature, top_p, top_k, min_p, seed, presence_penalty, frequency_penalty,
//   repetition_penalty, stop, stop_token_ids, ignore_eos, min_tokens, skip_special_tokens, stream,
//   stream_options.include_usage, logprobs (+ top_logprobs in chat), echo (completions),
//   add_generation_prompt, continue_final_message, chat_template, chat_template_kwargs, tools,
//   tool_choice, parallel_tool_calls, reasoning_effort (chat; api/openai_extras.h), n (up to
//   kMaxChoices), best_of (completions), logit_bias, priority (vLLM's; a non-zero value is a 400
//   from the engine unless the server runs --scheduling-policy priority);
// - accepted only at the value that means "nothing to do": suffix "", modalities ["text"];
// - honoured output constraints (api/output_constraint.h): response_format, structured_outputs,
//   guided_json, guided_regex, guided_choice, guided_grammar (guided_decoding_backend is
//   informational);
// - informational, with no effect on the generated text by definition: user, metadata, store,
//   service_tier, safety_identifier, prompt_cache_key;
// - rejected with a 400 naming the field whenever set to anything but null/false/empty: every
//   kUnsupportedFields entry in openai.cpp (prompt_logprobs, include_stop_str_in_output,
//   use_beam_search, functions, guided_whitespace_pattern, ...).
// Fields nobody defined are ignored, as vLLM does, so newer clients keep working.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/chat_extras.h"
#include "api/output_constraint.h"
#include "common/status.h"

namespace turbine::api {

inline constexpr int kMaxLogprobs = 20;
inline constexpr size_t kMaxStopStrings = 16;
// n (and best_of): choices per prompt. Each is a sequence in the engine; above this a 400.
inline constexpr int kMaxChoices = 16;
// logit_bias entries per request (OpenAI's limit).
inline constexpr size_t kMaxLogitBias = 300;
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

// Fields shared by /v1/completions and /v1/chat/completions, already validated.
struct SamplingOptions {
  std::optional<int> max_tokens;        // >= 1 (0 with echo); absent: the frontend picks
  float temperature = 1.0f;             // [0, 2]; 0 = greedy
  float top_p = 1.0f;                   // (0, 1]
  int top_k = -1;                       // >= -1; 0 or -1 = off
  float min_p = 0.0f;                   // [0, 1]
  std::optional<uint64_t> seed;         // a negative JSON seed is kept as its two's complement
  float presence_penalty = 0.0f;        // [-2, 2]
  float frequency_penalty = 0.0f;       // [-2, 2]
  float repetition_penalty = 1.0f;      // > 0 (vLLM extension)
  std::vector<std::string> stop;        // <= kMaxStopStrings, empty strings dropped
  std::vector<int32_t> stop_token_ids;  // vLLM extension, each >= 0
  bool ignore_eos = false;              // vLLM extension
  int min_tokens = 0;                   // vLLM extension: EOS/stop ids suppressed before this many
  int priority = 0;  // vLLM extension: lower is served earlier (--scheduling-policy priority)
  bool skip_special_tokens = true;  // vLLM extension: special tokens left out of the text
  int n = 1;                        // choices per prompt, [1, kMaxChoices]
  // Completions: sequences generated per prompt, of which the n with the highest cumulative
  // logprob are returned; n <= best_of <= kMaxChoices, not with stream (unless equal to n).
  int best_of = 1;
  // Token id -> bias in [-100, 100] added to its logit before sampling (sorted by id, unique).
  std::vector<std::pair<int32_t, float>> logit_bias;
  // Number of top alternatives per token; absent = no logprobs. Completions: `logprobs` (int
  // 0..20). Chat: `logprobs: true` + `top_logprobs` (0..20, default 0).
  std::optional<int> logprobs;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage (only valid with stream)
  bool echo = false;           // completions only: prepend the prompt to the output
  // What the output must match (structured outputs); kNone: unconstrained.
  OutputConstraint constraint;
};

// One completions prompt: text, or pre-tokenized ids.
struct PromptInput {
  std::string text;
  std::vector<int32_t> tokens;
  bool is_tokens = false;
};

struct CompletionRequest {
  std::string model;
  // At least one. A batch (array of strings / of token arrays) gets one choice per prompt, with
  // choice index = prompt index.
  std::vector<PromptInput> prompts;
  SamplingOptions sampling;
};

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant" | "tool" | "developer"
  // Text parts of an array content are joined with "\n". Null content is allowed only for
  // assistant messages and becomes "".
  std::string content;
  std::optional<std::string> name;
  std::optional<std::string> tool_call_id;
  // Assistant messages: the `tool_calls` array as JSON text (keys in the order sent), "" when
  // absent. Kept as JSON for the chat template, which formats the calls itself.
  std::string tool_calls_json;
  std::optional<std::string> reasoning_content;  // assistant messages (templates such as Qwen3's)
};

// vLLM's chat-template fields of /v1/chat/completions and /tokenize (messages form). JSON values
// stay JSON text with their keys in the order sent, so a template's `tojson` matches HF.
struct ChatTemplateFields {
  std::optional<std::string> chat_template;  // the request's own Jinja template (parsed later)
  std::string kwargs_json;                   // chat_template_kwargs object, "" when absent
  std::string tools_json;                    // non-empty `tools` array, "" when absent or []
  // Render so that the last (assistant) message stays open for the model to continue; needs
  // add_generation_prompt false, as in vLLM.
  bool continue_final_message = false;
};

struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;  // at least one
  SamplingOptions sampling;
  bool add_generation_prompt = true;  // vLLM extension
  ChatTemplateFields template_fields;
  // Tools, tool choice, output format, reasoning controls (api/chat_extras.h); filled by every
  // chat-like parser (chat completions, Responses, Anthropic).
  ChatExtras extras;
  // What the protocol adapter that parsed the request keeps for its own encoder (Responses: the
  // conversation to store); opaque to the stages in between. Null for most protocols.
  std::shared_ptr<const ProtocolState> protocol_state;
};

// vLLM /tokenize: either {prompt} or {messages} (is_chat).
struct TokenizeRequest {
  std::string model;  // may be empty (optional in vLLM)
  bool is_chat = false;
  std::string prompt;
  std::vector<ChatMessage> messages;
  // Default true for a prompt and false for messages (the chat template adds them), as vLLM.
  bool add_special_tokens = true;
  bool add_generation_prompt = true;
  ChatTemplateFields template_fields;  // messages form only
};

// vLLM /detokenize.
struct DetokenizeRequest {
  std::string model;  // may be empty
  std::vector<int32_t> tokens;
};

Result<CompletionRequest> parse_completion_request(std::string_view body);
Result<ChatRequest> parse_chat_request(std::string_view body);
Result<TokenizeRequest> parse_tokenize_request(std::string_view body);
Result<DetokenizeRequest> parse_detokenize_request(std::string_view body);

// ---------------------------------------------------------------------------------------------
// Responses. Builders return compact JSON text; chunk builders are meant for the per-token path.

// kToolCalls: the choice ended with tool calls (chat); kContentFilter: a guard blocked it.
enum class FinishReason { kNone, kStop, kLength, kAbort, kToolCalls, kContentFilter };
// "stop", "length", "abort", "tool_calls", "content_filter"; nullptr for kNone (null).
const char* finish_reason_name(FinishReason reason);

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  // Prompt tokens served from the prefix cache; emitted as prompt_tokens_details when set.
  std::optional<int64_t> cached_tokens;
};

struct TopLogprob {
  std::string token;  // detokenized piece; may be a partial UTF-8 sequence
  float logprob = 0.0f;
};

struct TokenLogprob {
  std::string token;
  float logprob = 0.0f;
  std::vector<TopLogprob> top;  // requested alternatives, best first
  // An echoed prompt's first token: no logprob, no alternatives (both null in the response).
  bool null_logprob = false;
};

// Identity of one response; all its chunks share it.
struct ResponseMeta {
  std::string id;       // "cmpl-..." / "chatcmpl-..."
  int64_t created = 0;  // unix seconds
  std::string model;
  // stream_options.include_usage: every chunk before the usage chunk carries "usage": null, as
  // OpenAI's streams do.
  bool null_usage_in_chunks = false;
  // The prompt's tokens, known before any output (Anthropic's message_start reports them).
  int64_t prompt_tokens = 0;
};

// prefix + "-" + 32 random hex digits (thread-local RNG).
std::string make_request_id(std::string_view prefix);

struct CompletionChoice {
  int index = 0;
  std::string_view text = {};
  FinishReason finish_reason = FinishReason::kNone;
  // Optional: {tokens, token_logprobs, top_logprobs, text_offset}; text_offset counts bytes from
  // `text_offset_start` (the offset of this piece within the whole completion text).
  std::span<const TokenLogprob> logprobs = {};
  bool has_logprobs = false;
  size_t text_offset_start = 0;
};

struct ChatChoice {
  int index = 0;
  std::string_view content = {};
  // "reasoning_content" (vLLM's name) when not empty.
  std::string_view reasoning = {};
  // "tool_calls": a JSON array already in OpenAI's shape (whole calls in a message, call deltas in
  // a chunk), "" when none. A message with tool calls and no content has "content": null.
  std::string_view tool_calls_json = {};
  FinishReason finish_reason = FinishReason::kNone;
  // Optional: {content:[{token, logprob, bytes, top_logprobs:[{token, logprob, bytes}]}]}.
  std::span<const TokenLogprob> logprobs = {};
  bool has_logprobs = false;
};

// Unary: {"id","object":"text_completion","created","model","choices":[...],"usage":{...}}.
std::string completion_response(const ResponseMeta& meta, std::span<const CompletionChoice> choices,
                                const Usage& usage);
// Stream chunk: same object with one choice and no usage.
std::string completion_chunk(const ResponseMeta& meta, const CompletionChoice& choice);
// Final chunk for stream_options.include_usage: "choices":[] and the usage.
std::string completion_usage_chunk(const ResponseMeta& meta, const Usage& usage);

// Unary: {"object":"chat.completion", choices:[{index, message:{role:"assistant",content},
// logprobs, finish_reason}], usage}.
std::string chat_response(const ResponseMeta& meta, std::span<const ChatChoice> choices,
                          const Usage& usage);
// First stream chunk of a choice: delta {"role":"assistant","content":""}.
std::string chat_role_chunk(const ResponseMeta& meta, int index);
// Content chunk: delta {"content": ...}; when finish_reason is set and content is empty the delta
// is {} (the final chunk).
std::string chat_chunk(const ResponseMeta& meta, const ChatChoice& choice);
std::string chat_usage_chunk(const ResponseMeta& meta, const Usage& usage);

struct ModelCard {
  std::string id;
  int64_t created = 0;
  int64_t max_model_len = 0;
  std::string owned_by = "turbine";
};
// {"object":"list","data":[{"id","object":"model","created","owned_by","max_model_len"}]}
std::string models_response(std::span<const ModelCard> models);
std::string model_response(const ModelCard& model);

// {"count","max_model_len","tokens":[...]}
std::string tokenize_response(std::span<const int32_t> tokens, int64_t max_model_len);
// {"prompt": text}
std::string detokenize_response(std::string_view text);

// "data: " + json + "\n\n"
std::string sse_event(std::string_view json);

}  // namespace turbine::api
