// The model-backed signals of the semantic stage, as small interfaces.
//
// The stage never loads models: the encoder-model engine (another module) implements these and
// the frontend hands them to SemanticStage::create. Every call is synchronous and may block for
// the model's latency, so with models configured the caller runs the stage off its event loop.
// Implementations must be safe to call from several threads at once (the stage shares them
// between requests and across config reloads).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turbine::semantic {

// texts -> one vector per text (any dimension, the same for every call). The stage normalises
// the vectors itself, so cosine similarity = dot product whatever the model returns.
class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual Result<std::vector<std::vector<float>>> embed(std::span<const std::string> texts) = 0;
};

struct LabelScore {
  std::string label;   // id2label name, e.g. "math", "jailbreak", "benign"
  float score = 0.0f;  // probability in [0, 1]
};

// text -> a score per label (softmax of a sequence-classification head), any order.
class SequenceClassifier {
 public:
  virtual ~SequenceClassifier() = default;
  virtual Result<std::vector<LabelScore>> classify(std::string_view text) = 0;
};

// One token-classification result, already grouped into an entity: `label` is the BIO label of
// its first token as the model emits it ("B-US_SSN"), offsets are bytes into the text given.
struct Entity {
  std::string label;
  size_t begin = 0;
  size_t end = 0;
  float score = 0.0f;
};

// text -> entities (the semantic router's PII label set: B-/I- of AGE ... ZIP_CODE).
class TokenClassifier {
 public:
  virtual ~TokenClassifier() = default;
  virtual Result<std::vector<Entity>> classify(std::string_view text) = 0;
};

// The models a stage may use; any may be null. A config that needs an absent one is refused by
// SemanticStage::create naming the key that needs it.
struct Models {
  std::shared_ptr<Embedder> embedder;                        // embedding signals, semantic cache
  std::shared_ptr<SequenceClassifier> domain_classifier;     // domain signals
  std::shared_ptr<SequenceClassifier> jailbreak_classifier;  // jailbreak.method classifier|both
  std::shared_ptr<TokenClassifier> pii_classifier;           // pii.model
};

}  // namespace turbine::semantic
