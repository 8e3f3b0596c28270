// Test doubles for the model interfaces (models.h): deterministic, no model files. Used by the
// unit tests and the bench; the encoder-model engine supplies the real implementations.
#pragma once

#include <atomic>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <xxhash.h>

#include "semantic/models.h"

namespace turbine::semantic {

// Bag of hashed lower-cased words and character trigrams in `dim` dimensions: texts that share
// most characters are close ("What is 2+2?" vs "What is 2+3?" ~0.9), unrelated ones are not.
class FakeEmbedder : public Embedder {
 public:
  explicit FakeEmbedder(size_t dim = 256) : dim_(dim) {}
  Result<std::vector<std::vector<float>>> embed(std::span<const std::string> texts) override {
    ++calls;
    if (fail) return internal_error("fake embedder failure");
    std::vector<std::vector<float>> out;
    for (const std::string& t : texts) out.push_back(vector(t));
    return out;
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
  Result<std::vector<LabelScore>> classify(std::string_view text) override {
    ++calls;
    if (fail) return internal_error("fake classifier failure");
    return fn_(text);
  }
  std::atomic<int> calls{0};
  bool fail = false;

 private:
  Fn fn_;
};

// Reports every occurrence of each configured (substring, label) as an entity.
class FakeTokenClassifier : public TokenClassifier {
 public:
  explicit FakeTokenClassifier(std::vector<std::pair<std::string, std::string>> spans)
      : spans_(std::move(spans)) {}
  Result<std::vector<Entity>> classify(std::string_view text) override {
    std::vector<Entity> out;
    for (const auto& [needle, label] : spans_) {
      for (size_t p = text.find(needle); p != std::string_view::npos;
           p = text.find(needle, p + 1)) {
        out.push_back({label, p, p + needle.size(), score});
      }
    }
    return out;
  }
  float score = 0.95f;

 private:
  std::vector<std::pair<std::string, std::string>> spans_;
};

}  // namespace turbine::semantic
