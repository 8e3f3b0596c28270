#include "semantic/evaluation.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "semantic/vector_index.h"

namespace turbine::semantic {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kCandidateRetry = std::chrono::seconds(5);
// An attempt whose answer never came (its request gave up before starting it, or the model lost
// it) stops blocking new attempts after this long.
constexpr auto kCandidateAttemptStale = std::chrono::seconds(30);
constexpr auto kFailureLogInterval = std::chrono::seconds(10);

size_t codepoints(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

template <typename List>
size_t index_of(const List& list, const std::string& name) {
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].name == name) return i;
  }
  return list.size();
}

}  // namespace

bool CandidateStore::begin() {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = Clock::now();
  // While an attempt is pending, retry_after_ is its staleness limit.
  if (ready_ || now < retry_after_) return false;
  retry_after_ = now + kCandidateAttemptStale;
  return true;
}

Status CandidateStore::finish(Result<Vectors> r) {
  Status st = r.status();
  auto per_signal = std::make_shared<std::vector<Vectors>>();
  if (st.is_ok() && r->size() != texts.size()) {
    st = internal_error("the embedder answered " + std::to_string(r->size()) + " vectors for " +
                        std::to_string(texts.size()) + " candidates");
  }
  if (st.is_ok()) {
    size_t k = 0;
    for (size_t n : counts) {
      Vectors v;
      for (size_t j = 0; j < n && st.is_ok(); ++j, ++k) {
        if (!normalize_vector((*r)[k])) {
          st = invalid_argument("candidate '" + texts[k] + "' embeds to a zero vector");
        }
        v.push_back(std::move((*r)[k]));
      }
      per_signal->push_back(std::move(v));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!st.is_ok()) {
    // A model not served right now fails at once, without work: the next need may try again.
    retry_after_ = Clock::now() + (st.code() == StatusCode::kUnavailable
                                       ? std::chrono::seconds(0)
                                       : std::chrono::seconds(kCandidateRetry));
    return st;
  }
  ready_ = std::move(per_signal);
  return Status::ok();
}

std::shared_ptr<const std::vector<Vectors>> CandidateStore::vectors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ready_;
}

void FailureLog::failed(std::string_view signal, const Status& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = Clock::now();
    auto it = last_.find(signal);
    if (it != last_.end() && now - it->second < kFailureLogInterval) return;
    last_[std::string(signal)] = now;
  }
  spdlog::warn("semantic: the {} model call failed ({}); its signal counts as absent", signal,
               why.message());
}

void CallRecorder::failed(std::string_view signal, const Status& why, bool timed_out) {
  metrics.signal_error(signal);
  if (timed_out) {
    metrics.signal_unavailable(signal, "timeout");
  } else if (why.code() == StatusCode::kUnavailable) {
    metrics.signal_unavailable(signal, "unavailable");
  }
  log.failed(signal, why);
}

Evaluation::Evaluation(const SemanticStage::Snapshot& snap, const Models& models,
                       CallRecorder& recorder, ModelCalls& calls, std::string_view text)
    : snap_(snap), models_(models), recorder_(recorder), calls_(calls), text_(text) {}

void Evaluation::note(std::vector<std::string>& list, const std::string& name) {
  if (std::find(list.begin(), list.end(), name) == list.end()) list.push_back(name);
}

void Evaluation::record(SignalType type, const std::string& name, float score, bool matched) {
  const char* t = signal_type_name(type);
  for (const SignalScore& s : scores) {
    if (s.name == name && s.type == t) return;
  }
  scores.push_back({t, name, score, matched});
}

void Evaluation::start_embedding() {
  if (embedding_call_ || !models_.embedder || text_.empty()) return;
  embedding_call_ =
      calls_.add<Vectors>([model = models_.embedder, text = std::string(text_)](
                              ModelDone<Vectors> done) { model->embed({text}, std::move(done)); });
}

void Evaluation::start_domain() {
  if (domain_call_ || !models_.domain_classifier || text_.empty()) return;
  domain_call_ = calls_.add<std::vector<std::vector<LabelScore>>>(
      [model = models_.domain_classifier,
       text = std::string(text_)](ModelDone<std::vector<std::vector<LabelScore>>> done) {
        model->classify({text}, std::move(done));
      });
}

void Evaluation::start_candidates() {
  if (candidates_call_ || !models_.embedder || snap_.candidates->texts.empty()) return;
  if (snap_.candidates->vectors() || !snap_.candidates->begin()) return;
  candidates_call_ =
      calls_.add<bool>([store = snap_.candidates, model = models_.embedder](ModelDone<bool> done) {
        model->embed(store->texts, [store, done](Result<Vectors> r) {
          Status st = store->finish(std::move(r));
          if (st.is_ok()) {
            spdlog::info("semantic: embedding signals ready ({} candidates)", store->texts.size());
            done(true);
          } else {
            done(st);
          }
        });
      });
}

void Evaluation::prefetch_for_decisions() {
  for (const Decision& d : snap_.config.decisions) {
    std::vector<const Rule*> model_signals;
    std::optional<bool> v = cheap(*d.rules, model_signals);
    if (v && *v) break;  // this decision matches whatever the models say: later ones are unread
    if (v) continue;     // false whatever the models say
    for (const Rule* r : model_signals) {
      if (r->type == SignalType::kEmbedding) {
        start_embedding();
        start_candidates();
      } else {
        start_domain();
      }
    }
  }
}

void Evaluation::prefetch_embedding() {
  start_embedding();
}

bool Evaluation::keyword(const std::string& name) {
  size_t i = index_of(snap_.config.keyword_signals, name);
  return i < snap_.keywords.size() && snap_.keywords[i].matches(text_);
}

bool Evaluation::length(const std::string& name) {
  const auto& list = snap_.config.length_signals;
  size_t i = index_of(list, name);
  if (i >= list.size()) return false;
  int64_t n = static_cast<int64_t>(codepoints(text_));
  return n >= list[i].min_chars && (list[i].max_chars == 0 || n <= list[i].max_chars);
}

std::optional<bool> Evaluation::cheap(const Rule& r, std::vector<const Rule*>& model_signals) {
  if (r.leaf) {
    switch (r.type) {
      case SignalType::kKeyword: return keyword(r.name);
      case SignalType::kLength: return length(r.name);
      case SignalType::kEmbedding:
      case SignalType::kDomain: model_signals.push_back(&r); return std::nullopt;
    }
    return false;
  }
  // A child's model signals count only while the node's value is still open.
  std::vector<const Rule*> open;
  bool unknown = false;
  switch (r.op) {
    case RuleOperator::kNot: {
      std::optional<bool> v = cheap(r.children.front(), open);
      if (v) return !*v;
      unknown = true;
      break;
    }
    case RuleOperator::kAnd:
      for (const Rule& ch : r.children) {
        std::optional<bool> v = cheap(ch, open);
        if (v && !*v) return false;
        unknown = unknown || !v;
      }
      if (!unknown) return true;
      break;
    case RuleOperator::kOr:
      for (const Rule& ch : r.children) {
        std::optional<bool> v = cheap(ch, open);
        if (v && *v) return true;
        unknown = unknown || !v;
      }
      if (!unknown) return false;
      break;
  }
  model_signals.insert(model_signals.end(), open.begin(), open.end());
  return std::nullopt;
}

const std::vector<float>* Evaluation::query_embedding() {
  if (!embedding_done_) {
    embedding_done_ = true;
    start_embedding();
    if (embedding_call_) {
      CallInfo info;
      Result<Vectors> r = calls_.get(*embedding_call_, &info);
      recorder_.settle("embedding", r, info);
      if (r.has_value()) {
        if (r->size() == 1 && normalize_vector((*r)[0])) {
          embedding_ = std::move((*r)[0]);
        } else {
          recorder_.failed("embedding", internal_error("no usable vector for the query"), false);
        }
      }
    }
  }
  return embedding_ ? &*embedding_ : nullptr;
}

const std::vector<LabelScore>* Evaluation::domains() {
  if (!domain_done_) {
    domain_done_ = true;
    start_domain();
    if (domain_call_) {
      CallInfo info;
      auto r = calls_.get(*domain_call_, &info);
      recorder_.settle("domain", r, info);
      if (r.has_value()) {
        if (r->size() == 1) {
          domain_scores_ = std::move((*r)[0]);
        } else {
          recorder_.failed("domain", internal_error("no scores for the query"), false);
        }
      }
    }
  }
  return domain_scores_ ? &*domain_scores_ : nullptr;
}

const std::vector<Vectors>* Evaluation::candidates() {
  if (!candidates_done_) {
    candidates_done_ = true;
    candidates_ = snap_.candidates->vectors();
    if (!candidates_) {
      start_candidates();
      if (candidates_call_) {
        CallInfo info;
        Result<bool> r = calls_.get(*candidates_call_, &info);
        recorder_.settle("embedding", r, info);
        candidates_ = snap_.candidates->vectors();
      } else if (models_.embedder) {
        // Another request's attempt is running (or failed less than 5 s ago).
        recorder_.failed("embedding",
                         Status(StatusCode::kUnavailable,
                                "the embedding signals' candidates are not embedded yet"),
                         false);
      }
    }
  }
  return candidates_.get();
}

std::pair<bool, float> Evaluation::leaf(const Rule& r) {
  const SemanticConfig& c = snap_.config;
  switch (r.type) {
    case SignalType::kKeyword: {
      auto t0 = Clock::now();
      bool m = keyword(r.name);
      recorder_.metrics.signal_latency("keyword",
                                       std::chrono::duration<double>(Clock::now() - t0).count());
      if (m) note(matched_keywords, r.name);
      return {m, m ? 1.0f : 0.0f};
    }
    case SignalType::kEmbedding: {
      size_t i = index_of(c.embedding_signals, r.name);
      // Both calls run before either is awaited.
      start_embedding();
      start_candidates();
      const std::vector<float>* q = query_embedding();
      const std::vector<Vectors>* cands = candidates();
      if (q == nullptr || cands == nullptr || i >= cands->size()) return {false, 0.0f};
      const EmbeddingSignal& s = c.embedding_signals[i];
      const Vectors& mine = (*cands)[i];
      float best = -1.0f, sum = 0.0f;
      for (const auto& cand : mine) {
        if (cand.size() != q->size()) continue;
        float d = 0;
        for (size_t k = 0; k < cand.size(); ++k) d += cand[k] * (*q)[k];
        best = std::max(best, d);
        sum += d;
      }
      float agg = s.aggregation == Aggregation::kMean && !mine.empty()
                      ? sum / static_cast<float>(mine.size())
                      : best;
      bool m = agg >= s.threshold;
      if (m) note(matched_embeddings, r.name);
      return {m, std::max(agg, 0.0f)};
    }
    case SignalType::kDomain: {
      size_t i = index_of(c.domain_signals, r.name);
      const std::vector<LabelScore>* scores = domains();
      if (scores == nullptr || i >= c.domain_signals.size()) return {false, 0.0f};
      const DomainSignal& s = c.domain_signals[i];
      float best = 0.0f;
      for (const LabelScore& ls : *scores) {
        if (std::find(s.labels.begin(), s.labels.end(), ls.label) != s.labels.end()) {
          best = std::max(best, ls.score);
        }
      }
      bool m = best >= s.threshold;
      if (m) note(matched_domains, r.name);
      return {m, best};
    }
    case SignalType::kLength: {
      bool m = length(r.name);
      if (m) note(matched_length, r.name);
      return {m, m ? 1.0f : 0.0f};
    }
  }
  return {false, 0.0f};
}

std::pair<bool, float> Evaluation::eval(const Rule& r) {
  if (r.leaf) {
    auto [m, conf] = leaf(r);
    record(r.type, r.name, conf, m);
    return {m, conf};
  }
  switch (r.op) {
    case RuleOperator::kNot: {
      auto [m, conf] = eval(r.children.front());
      return {!m, 1.0f};
    }
    case RuleOperator::kAnd: {
      float conf = 1.0f;
      for (const Rule& ch : r.children) {
        auto [m, cc] = eval(ch);
        if (!m) return {false, 0.0f};
        conf = std::min(conf, cc);
      }
      return {true, conf};
    }
    case RuleOperator::kOr: {
      bool any = false;
      float conf = 0.0f;
      // Every child is evaluated so the debug headers list each matched signal.
      for (const Rule& ch : r.children) {
        auto [m, cc] = eval(ch);
        if (m) {
          any = true;
          conf = std::max(conf, cc);
        }
      }
      return {any, conf};
    }
  }
  return {false, 0.0f};
}

}  // namespace turbine::semantic
