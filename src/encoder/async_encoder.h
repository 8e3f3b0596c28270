// AsyncEncoder: the asynchronous interface to an encoder model, the counterpart of
// engine::AsyncEngine for models that embed, classify or score instead of generating.
//
// One EncoderRequest is one API call (many inputs); its EncoderResponse holds one result per input.
// The local EncoderService, a RemoteEncoder (runtime/remote_encoder.h: a worker over the request
// plane) and a RoutedEncoder (least-loaded over several of them) all implement it, so the HTTP
// frontend's routes (/v1/embeddings, /classify, /v1/rerank, /v1/score) and in-process callers
// (semantic cache, guards) use one call whatever is behind it.
//
// Threads: submit() from any thread; `done` is called exactly once, on any thread (possibly
// before submit() returns), and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "encoder/heads.h"

namespace turbine::encoder {

// What the model is for, from its head (and, for classifiers, its number of labels).
enum class EncoderTask : uint8_t {
  kEmbedding,            // hidden states pooled into vectors
  kClassification,       // labels for a text
  kTokenClassification,  // labels per token, grouped into entities
  kScore,                // a cross-encoder: one relevance score for a (query, document) pair
};
// "embedding", "classification", "token_classification", "score".
const char* task_name(EncoderTask task);
// The inverse; kInvalidArgument for other names.
Result<EncoderTask> task_from_name(std::string_view name);

struct EncodeOptions {
  // Cut inputs longer than the model's maximum to fit (special tokens kept; pairs longest
  // first) instead of refusing them.
  bool truncate = false;
  // > 0: keep at most this many tokens (vLLM's truncate_prompt_tokens); implies truncation.
  int truncate_tokens = 0;
  // Override the model's L2 normalisation of embeddings.
  std::optional<bool> normalize;
  // > 0: Matryoshka truncation of embeddings to their first `dimensions` values, renormalised
  // when the embeddings are normalised. More than the model's width is kInvalidArgument.
  int dimensions = 0;
};

struct Embedding {
  std::vector<float> vector;
  int n_tokens = 0;
};

struct Classification {
  std::vector<LabelScore> labels;  // in label-id order
  int32_t top = 0;                 // id of the most probable label
  int n_tokens = 0;
};

struct TokenClassification {
  std::vector<Entity> entities;
  std::vector<TokenPrediction> tokens;  // the text's tokens, special tokens left out
  int n_tokens = 0;
};

struct Relevance {
  float score = 0.0f;  // cross-encoder: sigmoid(logit); embeddings: cosine similarity
  float logit = 0.0f;  // cross-encoder logit (embeddings: the cosine again)
  int n_tokens = 0;
};

enum class EncoderOp : uint8_t {
  kEmbed = 1,           // texts (or token_inputs) -> embeddings
  kClassify = 2,        // texts -> classifications
  kClassifyTokens = 3,  // texts -> token_classifications
  kScore = 4,           // (queries, texts) pairs -> scores
};
const char* op_name(EncoderOp op);

struct EncoderRequest {
  EncoderOp op = EncoderOp::kEmbed;
  // The inputs; for kScore the documents.
  std::vector<std::string> texts;
  // kEmbed only: token ids as given (no special tokens added), instead of texts.
  std::vector<std::vector<int32_t>> token_inputs;
  // kScore: one query for every document, or one per document (pairwise).
  std::vector<std::string> queries;
  EncodeOptions options;
  // The request's names for its inputs and queries, for errors ("documents[2] is empty", param
  // "documents"): "input" and "query" unless the endpoint calls them otherwise.
  std::string input_field = "input";
  std::string query_field = "query";

  size_t n_inputs() const { return token_inputs.empty() ? texts.size() : token_inputs.size(); }
};

// One vector of results, the one of the request's op, in input order.
struct EncoderResponse {
  std::vector<Embedding> embeddings;
  std::vector<Classification> classifications;
  std::vector<TokenClassification> token_classifications;
  std::vector<Relevance> scores;

  // Tokens the model ran (usage.prompt_tokens).
  int64_t prompt_tokens() const;
};

// What a client needs to know about the model behind an AsyncEncoder.
struct EncoderInfo {
  EncoderTask task = EncoderTask::kEmbedding;
  int hidden_dim = 0;               // width of an embedding
  int max_tokens = 0;               // longest input in tokens
  size_t max_inputs = 0;            // inputs per request
  std::vector<std::string> labels;  // classifiers: id2label in id order
};

using EncoderCallback = std::function<void(Result<EncoderResponse>)>;

class AsyncEncoder {
 public:
  virtual ~AsyncEncoder() = default;
  // Runs `request`; `done` gets the results or why not (kInvalidArgument naming the input for bad
  // input or a task the model does not do, kResourceExhausted when the queue is full,
  // kUnavailable when shut down or the worker is gone).
  virtual void submit(EncoderRequest request, EncoderCallback done) = 0;
  virtual EncoderInfo info() const = 0;
  // Requests submitted and not yet done (least-loaded routing, metrics).
  virtual int in_flight() const = 0;
  // Refuses new requests (kUnavailable); requests running finish or fail. Idempotent.
  virtual void shutdown() = 0;
};

// Which ops a model of `task` answers, and the error saying why not. Embedding models also score
// (cosine similarity); score models also classify (their one label).
Status check_op(EncoderTask task, EncoderOp op, const std::string& model_name);

}  // namespace turbine::encoder
