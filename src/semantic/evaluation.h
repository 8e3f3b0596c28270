// The stage's compiled config (SemanticStage::Snapshot) and its per-request signal evaluation,
// shared by stage.cpp and evaluation.cpp; not part of the module's interface.
//
// Model-backed signals go through the request's ModelCalls: with max_parallel_calls > 1 the
// calls the decisions may need are started before any is awaited (prefetch_for_decisions: the
// keyword and length signals are evaluated first, in three-valued logic with every model signal
// unknown, so a decision settled by cheap signals alone needs no model), then eval() awaits each
// where a rule reads it. With 1 each call starts where a rule first reads it (the lazy order).
// A call that fails (the model errs, is not served right now, or does not answer within the
// request's time) makes its signal absent: leaves over it are false, and the failure is counted
// (turbine_semantic_signal_errors_total, and _unavailable_total for the last two) and logged (at
// most every 10 s per signal).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "semantic/jailbreak.h"
#include "semantic/keyword.h"
#include "semantic/metrics.h"
#include "semantic/model_calls.h"
#include "semantic/pii.h"
#include "semantic/stage.h"

namespace turbine::semantic {

using Vectors = std::vector<std::vector<float>>;

// The embedding signals' candidate vectors (unit length, per signal). Embedded when the snapshot
// is built if the embedder answers then; otherwise (a remote model not served yet) by the first
// request or warm-up that needs them, one attempt at a time, again at most every 5 s after a
// failure. The one mutable part of a snapshot: mu guards it; completions fill it on any thread.
struct CandidateStore {
  std::vector<std::string> texts;  // every signal's candidates, in signal order
  std::vector<size_t> counts;      // candidates per signal

  // True when the caller should embed `texts` now (nothing ready, no attempt running or due).
  bool begin();
  // An attempt's answer; an error leaves the store empty (and the next attempt 5 s away).
  Status finish(Result<Vectors> r);
  // Per signal, or null while not embedded.
  std::shared_ptr<const std::vector<Vectors>> vectors() const;

 private:
  mutable std::mutex mu_;  // guards the two below
  std::shared_ptr<const std::vector<Vectors>> ready_;
  // No attempt starts before this: a pending attempt's staleness limit (30 s), or 5 s after a
  // failed one.
  std::chrono::steady_clock::time_point retry_after_{};
};

struct SemanticStage::Snapshot {
  SemanticConfig config;
  std::vector<KeywordMatcher> keywords;  // config.keyword_signals order
  std::shared_ptr<CandidateStore> candidates = std::make_shared<CandidateStore>();
  PiiDetector pii{std::vector<std::string>{}};
  JailbreakDetector jailbreak;
  bool cache_may_be_on = false;  // semantic_cache.enabled or a decision's cache.enabled
  explicit Snapshot(SemanticConfig c) : config(std::move(c)), pii(config.pii.types) {}
};

// At most one log line per signal every 10 s for failing model calls (a remote model that is
// gone fails every request). Thread-safe.
class FailureLog {
 public:
  void failed(std::string_view signal, const Status& why);

 private:
  std::mutex mu_;
  std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> last_;
};

// Records a model call's latency and, when it failed, its error (metrics and log).
struct CallRecorder {
  SemanticMetrics& metrics;
  FailureLog& log;
  template <typename T>
  void settle(std::string_view signal, const Result<T>& r, const CallInfo& info) {
    if (!info.timed_out) metrics.signal_latency(signal, info.seconds);
    if (r.has_value()) return;
    failed(signal, r.status(), info.timed_out);
  }
  void failed(std::string_view signal, const Status& why, bool timed_out);
};

// Per-request signal evaluation over one text (the last user message).
class Evaluation {
 public:
  Evaluation(const SemanticStage::Snapshot& snap, const Models& models, CallRecorder& recorder,
             ModelCalls& calls, std::string_view text);

  // Starts the model calls the decisions (in priority order) may need.
  void prefetch_for_decisions();
  // Starts the query's embedding (the cache's similarity tier).
  void prefetch_embedding();

  // (matched, confidence)
  std::pair<bool, float> eval(const Rule& r);
  // The query's unit embedding; null when there is no embedder, no text, or the call failed.
  const std::vector<float>* query_embedding();

  std::vector<std::string> matched_keywords, matched_embeddings, matched_domains, matched_length;
  std::vector<SignalScore> scores;  // first evaluation of each leaf

  static void note(std::vector<std::string>& list, const std::string& name);

 private:
  std::pair<bool, float> leaf(const Rule& r);
  // Three-valued: nullopt when a model signal decides; `model_signals` collects those.
  std::optional<bool> cheap(const Rule& r, std::vector<const Rule*>& model_signals);
  bool keyword(const std::string& name);
  bool length(const std::string& name);
  void start_embedding();
  void start_domain();
  void start_candidates();
  const std::vector<LabelScore>* domains();
  // The candidates per signal, awaiting this request's embedding attempt if it made one.
  const std::vector<Vectors>* candidates();
  void record(SignalType type, const std::string& name, float score, bool matched);

  const SemanticStage::Snapshot& snap_;
  const Models& models_;
  CallRecorder& recorder_;
  ModelCalls& calls_;
  std::string_view text_;
  std::optional<ModelCalls::Handle<Vectors>> embedding_call_;
  std::optional<ModelCalls::Handle<std::vector<std::vector<LabelScore>>>> domain_call_;
  std::optional<ModelCalls::Handle<bool>> candidates_call_;
  std::optional<std::vector<float>> embedding_;
  bool embedding_done_ = false;
  std::optional<std::vector<LabelScore>> domain_scores_;
  bool domain_done_ = false;
  std::shared_ptr<const std::vector<Vectors>> candidates_;
  bool candidates_done_ = false;
};

}  // namespace turbine::semantic
