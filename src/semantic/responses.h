// Responses the stage answers itself, and the x-vsr-* header names.
//
// Block responses follow the vLLM Semantic Router's contract (legacy line, the one its Dynamo
// guide shows; /work/shared/reference/semantic-router.md section 2): HTTP 200,
// finish_reason "content_filter", usage zeros, its ids and message texts.
//  - unary body: {"id","object":"chat.completion","created","model","choices":[{"index":0,
//    "message":{"role":"assistant","content":...},"finish_reason":"content_filter"}],"usage":{...}}
//  - stream body: ONE chunk as the router writes it (Go marshals a map, so keys are sorted):
//    data: {"choices":[{"delta":{"content":...,"role":"assistant"},"finish_reason":
//    "content_filter","index":0}],"created":N,"id":...,"model":...,"object":
//    "chat.completion.chunk"}\n\ndata: [DONE]\n\n
// Strings are escaped as Go's encoding/json does (text.h), so bodies match byte for byte.
// Cache replays are shaped like Turbine's live responses (api/openai.cpp's builders): role
// chunk, content chunks, a final chunk with finish_reason, an optional usage chunk, [DONE].
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "semantic/cache.h"

namespace turbine::semantic {

namespace header {
inline constexpr const char* kSelectedModel = "x-vsr-selected-model";
inline constexpr const char* kSelectedCategory = "x-vsr-selected-category";
inline constexpr const char* kSelectedDecision = "x-vsr-selected-decision";
inline constexpr const char* kSelectedReasoning = "x-vsr-selected-reasoning";
inline constexpr const char* kSelectedConfidence = "x-vsr-selected-confidence";
inline constexpr const char* kInjectedSystemPrompt = "x-vsr-injected-system-prompt";
inline constexpr const char* kCacheHit = "x-vsr-cache-hit";
inline constexpr const char* kCacheSimilarity = "x-vsr-cache-similarity";
inline constexpr const char* kPiiViolation = "x-vsr-pii-violation";
inline constexpr const char* kPiiTypes = "x-vsr-pii-types";
inline constexpr const char* kJailbreakBlocked = "x-vsr-jailbreak-blocked";
inline constexpr const char* kJailbreakType = "x-vsr-jailbreak-type";
inline constexpr const char* kJailbreakConfidence = "x-vsr-jailbreak-confidence";
inline constexpr const char* kSchemaVersion = "x-vsr-schema-version";
inline constexpr const char* kResponsePath = "x-vsr-response-path";
inline constexpr const char* kMatchedKeywords = "x-vsr-matched-keywords";
inline constexpr const char* kMatchedEmbeddings = "x-vsr-matched-embeddings";
inline constexpr const char* kMatchedDomains = "x-vsr-matched-domains";
inline constexpr const char* kMatchedContext = "x-vsr-matched-context";
inline constexpr const char* kMatchedJailbreak = "x-vsr-matched-jailbreak";
inline constexpr const char* kMatchedPii = "x-vsr-matched-pii";
// Request-side controls.
inline constexpr const char* kDebug = "x-vsr-debug";
inline constexpr const char* kCacheControl = "x-vsr-cache-control";
}  // namespace header

struct Header {
  std::string name;  // lower case
  std::string value;
  bool operator==(const Header&) const = default;
};

// A response the frontend sends instead of calling the engine: status, content type, body (for
// streams, every SSE frame concatenated; `frames` holds them one by one) and headers (the
// content-type among them).
struct ImmediateResponse {
  int http_status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::string> frames;  // streams only: "data: ...\n\n" each, the last "data: [DONE]"
  std::vector<Header> headers;
  // Block responses: the assistant message and the model the body names, for endpoints whose
  // protocol encodes its own body (the frontend's completions, Responses, Messages).
  std::string message;
  std::string model;
};

// `denied_labels`: BIO labels ("B-US_SSN") in detection order; `model`: the model whose policy
// refused them.
ImmediateResponse pii_block_response(std::string_view model,
                                     const std::vector<std::string>& denied_labels, bool stream,
                                     int64_t now_unix);
// `type`: the detector's label ("jailbreak"); confidence printed with %.3f.
ImmediateResponse jailbreak_block_response(std::string_view type, float confidence, bool stream,
                                           int64_t now_unix);

enum class Endpoint { kChat, kCompletions };

// A cached response replayed as a live one with a fresh `id` and `created`.
ImmediateResponse cache_replay_response(const CachedResponse& r, Endpoint endpoint, bool stream,
                                        bool include_usage, std::string_view id, int64_t now_unix);

// The two message texts of the contract.
std::string pii_block_message(std::string_view model, const std::vector<std::string>& labels);
std::string jailbreak_block_message(std::string_view type, float confidence);

}  // namespace turbine::semantic
