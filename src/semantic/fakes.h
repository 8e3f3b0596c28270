// Test doubles for the model interfaces (models.h): deterministic, no model files. Used by the
// unit tests and the bench; the semantic hook supplies the real implementations.
//
// Each fake answers the way `answer` says: inline (a quick local model), on a thread of its own
// (a remote worker: the answer comes later, on another thread; `before_answer` runs there first,
// so a test can hold answers back or make calls meet), or kUnavailable at once (a remote model no
// worker serves). Threads are joined when the fake is destroyed.
#pragma once

#include <atomic>
#include <cmath>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <xxhash.h>

#include "semantic/models.h"

namespace turbine::semantic {

class FakeAnswering {
 public:
  enum class Mode { kInline, kThread, kUnavailable };
  Mode mode = Mode::kInline;
  std::function<void()> before_answer;  // kThread: runs on the answering thread first

  ~FakeAnswering() { join(); }
  void join() {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

  template <typename T>
  void answer(Result<T> result, ModelDone<T> done) {
    if (mode == Mode::kUnavailable) {
      done(Status(StatusCode::kUnavailable, "no worker serves the fake model"));
      return;
    }
    if (mode == Mode::kInline) {
      done(std::move(result));
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back(
        [gate = before_answer, r = std::move(result), done = std::move(done)]() mutable {
          if (gate) gate();
          done(std::move(r));
        });
  }

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

// Bag of hashed lower-cased words and character trigrams in `dim` dimensions: texts that share
// most characters are close ("What is 2+2?" vs "What is 2+3?" ~0.9), unrelated ones are not.
class FakeEmbedder : public Embedder {
 public:
  explicit FakeEmbedder(size_t dim = 256) : dim_(dim) {}
  void embed(std::vector<std::string> texts,
             ModelDone<std::vector<std::vector<float>>> done) override {
    ++calls;
    if (fail)
      return answering.answer<std::vector<std::vector<float>>>(
          internal_error("fake embedder failure"), std::move(done));
    std::vector<std::vector<float>> out;
    for (const std::string& t : texts) out.push_back(vector(t));
    answering.answer<std::vector<std::vector<float>>>(std::move(out), std::move(done));
  }
  std::vector<float> vector(std::string_view text) const {
    std::string s;
    for (char c : text) s += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    std::vector<float> v(dim_, 0.0f);
    auto bump = [&](std::string_view piece, float w) {
      v[XXH3_64bits(piece.data(), piece.size()) % dim_] += w;
    };
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && s[i] == ' ') ++i;
      size_t j = i;
      while (j < s.size() && s[j] != ' ') ++j;
      if (j > i) bump(std::string_view(s).substr(i, j - i), 1.0f);
      i = j;
    }
    for (size_t k = 0; k + 3 <= s.size(); ++k) bump(std::string_view(s).substr(k, 3), 0.5f);
    return v;
  }
  std::atomic<int> calls{0};
  bool fail = false;
  FakeAnswering answering;  // last member: its threads are joined before the rest goes

 private:
  size_t dim_;
};

// Returns the scores `fn` gives (default: every label of `table` whose keyword occurs).
class FakeSequenceClassifier : public SequenceClassifier {
 public:
  using Fn = std::function<std::vector<LabelScore>(std::string_view)>;
  explicit FakeSequenceClassifier(Fn fn) : fn_(std::move(fn)) {}
  // (keyword, label, score): the label scores `score` when the keyword occurs in the text.
  static std::shared_ptr<FakeSequenceClassifier> keywords(
      std::vector<std::tuple<std::string, std::string, float>> table) {
    return std::make_shared<FakeSequenceClassifier>([table](std::string_view text) {
      std::vector<LabelScore> out;
      for (const auto& [kw, label, score] : table) {
        if (text.find(kw) != std::string_view::npos) out.push_back({label, score});
      }
      return out;
    });
  }
  void classify(std::vector<std::string> texts,
                ModelDone<std::vector<std::vector<LabelScore>>> done) override {
    ++calls;
    if (fail)
      return answering.answer<std::vector<std::vector<LabelScore>>>(
          internal_error("fake classifier failure"), std::move(done));
    std::vector<std::vector<LabelScore>> out;
    for (const std::string& t : texts) out.push_back(fn_(t));
    answering.answer<std::vector<std::vector<LabelScore>>>(std::move(out), std::move(done));
  }
  std::atomic<int> calls{0};
  bool fail = false;

 private:
  Fn fn_;

 public:
  FakeAnswering answering;
};

// Reports every occurrence of each configured (substring, label) as an entity.
class FakeTokenClassifier : public TokenClassifier {
 public:
  explicit FakeTokenClassifier(std::vector<std::pair<std::string, std::string>> spans)
      : spans_(std::move(spans)) {}
  void classify(std::vector<std::string> texts,
                ModelDone<std::vector<std::vector<Entity>>> done) override {
    ++calls;
    std::vector<std::vector<Entity>> out;
    for (const std::string& text : texts) {
      std::vector<Entity> ents;
      for (const auto& [needle, label] : spans_) {
        for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) {
          ents.push_back({label, p, p + needle.size(), score});
        }
      }
      out.push_back(std::move(ents));
    }
    answering.answer<std::vector<std::vector<Entity>>>(std::move(out), std::move(done));
  }
  float score = 0.95f;
  std::atomic<int> calls{0};

 private:
  std::vector<std::pair<std::string, std::string>> spans_;

 public:
  FakeAnswering answering;
};

}  // namespace turbine::semantic
