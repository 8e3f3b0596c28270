// The encoder endpoints' protocol: request parsing + validation and response bodies for
//   POST /v1/embeddings            OpenAI (input as string, strings, token ids or lists of them;
//                                  encoding_format float/base64; dimensions; usage)
//   POST /classify, /v1/classify   vLLM's classification shape
//   POST /v1/rerank, /rerank,      the Cohere / Jina / vLLM rerank shape (query, documents as
//        /v2/rerank                strings or {"text"} objects, top_n, return_documents)
//   POST /v1/score, /score         vLLM's score shape (text_1 vs text_2)
// Errors are kInvalidArgument naming the field, as api/openai.h does; api::error_json turns them
// into OpenAI-shaped 400s.
//
// Fields, as in openai.h: every field named here is honoured or a 400; fields nobody defined are
// ignored (newer clients keep working).
// - embeddings: model (optional: the first encoder model), input, encoding_format ("float",
//   "base64"), dimensions (>= 1), truncate_prompt_tokens (-1: to the model's maximum; k >= 1:
//   at most k tokens), normalize (vLLM), add_special_tokens (true only); user (informational).
// - classify: model, input (string or strings), truncate_prompt_tokens; user.
// - rerank: model, query, documents, top_n (0 or absent: all), return_documents (default true,
//   as Jina and vLLM), truncate_prompt_tokens; max_chunks_per_doc and rank_fields are 400s.
// - score: model, text_1 and text_2 (a string or strings: 1 x N, N x N pairwise, or 1 x 1),
//   truncate_prompt_tokens.
//
// Pure functions; safe on any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turbine::api {

// truncate_prompt_tokens as parsed: absent, -1 (to the model's maximum) or a count.
struct Truncation {
  bool to_max = false;  // -1
  int tokens = 0;       // >= 1: at most this many
};

struct EmbeddingsRequest {
  std::string model;                               // may be empty
  std::vector<std::string> texts;                  // string / array of strings
  std::vector<std::vector<int32_t>> token_inputs;  // array of ids / array of arrays of ids
  bool base64 = false;                             // encoding_format "base64"
  int dimensions = 0;                              // 0: the model's width
  Truncation truncation;
  std::optional<bool> normalize;
};

struct ClassifyRequest {
  std::string model;
  std::vector<std::string> texts;
  Truncation truncation;
};

struct RerankRequest {
  std::string model;
  std::string query;
  std::vector<std::string> documents;
  int top_n = 0;  // 0: all
  bool return_documents = true;
  Truncation truncation;
};

struct ScoreRequest {
  std::string model;
  std::vector<std::string> text_1;  // one, or as many as text_2
  std::vector<std::string> text_2;
  Truncation truncation;
};

Result<EmbeddingsRequest> parse_embeddings_request(std::string_view body);
Result<ClassifyRequest> parse_classify_request(std::string_view body);
Result<RerankRequest> parse_rerank_request(std::string_view body);
Result<ScoreRequest> parse_score_request(std::string_view body);

// ---- responses ------------------------------------------------------------------------------

// Little-endian float32 bytes, base64 (OpenAI's encoding_format "base64"; the official clients
// decode it with Float32Array / numpy.frombuffer).
std::string base64_floats(const float* v, size_t n);

struct PoolingUsage {
  int64_t prompt_tokens = 0;
};

// {"id","object":"list","created","model","data":[{"index","object":"embedding","embedding"}],
//  "usage":{"prompt_tokens","total_tokens"}}
std::string embeddings_response(std::string_view id, int64_t created, std::string_view model,
                                const std::vector<std::vector<float>>& vectors, bool base64,
                                const PoolingUsage& usage);

struct EntitySpan {
  std::string entity_group;  // "PER"
  float score = 0.0f;
  std::string word;
  int64_t start = 0;  // code points
  int64_t end = 0;
};

// One input of /classify: a label with its probabilities (sequence classification), or the
// entities found in it (token classification models; a Turbine extension of vLLM's shape).
struct ClassifyItem {
  std::string label;
  std::vector<float> probs;
  bool token_level = false;
  std::vector<EntitySpan> entities;
};

// {"id","object":"list","created","model","data":[{"index","label","probs","num_classes"}],
//  "usage":{"prompt_tokens","total_tokens","completion_tokens":0,"prompt_tokens_details":null}}
// Token-level items are {"index","entities":[{"entity_group","score","word","start","end"}]}.
std::string classify_response(std::string_view id, int64_t created, std::string_view model,
                              const std::vector<ClassifyItem>& items, const PoolingUsage& usage);

struct RerankResult {
  int index = 0;
  float relevance_score = 0.0f;
};

// Sorted by relevance (descending, ties by index) and cut to top_n: what rerank returns.
std::vector<RerankResult> rank(const std::vector<float>& scores, int top_n);

// {"id","model","usage":{"prompt_tokens","total_tokens"},"results":[{"index","relevance_score",
//  "document":{"text"}}]} (document only with return_documents).
std::string rerank_response(std::string_view id, std::string_view model,
                            const std::vector<RerankResult>& results,
                            const std::vector<std::string>& documents, bool return_documents,
                            const PoolingUsage& usage);

// {"id","object":"list","created","model","data":[{"index","object":"score","score"}],"usage"}
std::string score_response(std::string_view id, int64_t created, std::string_view model,
                           const std::vector<float>& scores, const PoolingUsage& usage);

}  // namespace turbine::api
