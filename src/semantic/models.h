// The model-backed signals of the semantic stage, as small asynchronous interfaces.
//
// The stage never loads models: the frontend's semantic hook implements these over the encoder
// module's AsyncEncoder (an in-process EncoderService, or the RoutedEncoder of a model served by
// encoder workers) and hands them to SemanticStage::create, so the stage does not know whether a
// model is local or remote. Every call takes many texts (one batch per request and model) and
// answers through `done`: exactly once, on any thread (possibly before the call returns); `done`
// must not block. A model that cannot answer now (a remote model no worker serves, a model shut
// down) answers kUnavailable. Implementations must be safe to call from several threads at once
// (the stage shares them between requests and across config reloads).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turbine::semantic {

template <typename T>
using ModelDone = std::function<void(Result<T>)>;

// texts -> one vector per text (any dimension, the same for every call). The stage normalises
// the vectors itself, so cosine similarity = dot product whatever the model returns.
class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual void embed(std::vector<std::string> texts,
                     ModelDone<std::vector<std::vector<float>>> done) = 0;
};

struct LabelScore {
  std::string label;   // id2label name, e.g. "math", "jailbreak", "benign"
  float score = 0.0f;  // probability in [0, 1]
};

// texts -> a score per label for each text (softmax of a sequence-classification head), any
// order.
class SequenceClassifier {
 public:
  virtual ~SequenceClassifier() = default;
  virtual void classify(std::vector<std::string> texts,
                        ModelDone<std::vector<std::vector<LabelScore>>> done) = 0;
};

// One token-classification result, already grouped into an entity: `label` is the BIO label of
// its first token as the model emits it ("B-US_SSN"), offsets are bytes into the text given.
struct Entity {
  std::string label;
  size_t begin = 0;
  size_t end = 0;
  float score = 0.0f;
};

// texts -> entities per text (the semantic router's PII label set: B-/I- of AGE ... ZIP_CODE).
class TokenClassifier {
 public:
  virtual ~TokenClassifier() = default;
  virtual void classify(std::vector<std::string> texts,
                        ModelDone<std::vector<std::vector<Entity>>> done) = 0;
};

// The models a stage may use; any may be null. A config that needs an absent one is refused by
// SemanticStage::create naming the key that needs it.
struct Models {
  std::shared_ptr<Embedder> embedder;                        // embedding signals, semantic cache
  std::shared_ptr<SequenceClassifier> domain_classifier;     // domain signals
  std::shared_ptr<SequenceClassifier> jailbreak_classifier;  // jailbreak.method classifier|both
  std::shared_ptr<TokenClassifier> pii_classifier;           // pii.model
};

// Blocking forms for callers that may wait (start-up, tests, tools): the call, then its answer.
Result<std::vector<std::vector<float>>> embed_blocking(Embedder& model,
                                                       std::vector<std::string> texts);
Result<std::vector<std::vector<LabelScore>>> classify_blocking(SequenceClassifier& model,
                                                               std::vector<std::string> texts);
Result<std::vector<std::vector<Entity>>> classify_blocking(TokenClassifier& model,
                                                           std::vector<std::string> texts);

}  // namespace turbine::semantic
