#include "tokenizer/subword_models.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>

#include "tokenizer/utf8.h"

namespace turbine::tokenizer {
namespace {

using nlohmann::json;

size_t char_len_at(std::string_view s, size_t i) {
  return std::min(utf8_sequence_length(static_cast<uint8_t>(s[i])), s.size() - i);
}

class WordPieceModel final : public SubwordModel {
 public:
  WordPieceModel(PieceMap vocab, int32_t unk_id, std::string prefix, size_t max_chars)
      : vocab_(std::move(vocab)),
        unk_id_(unk_id),
        prefix_(std::move(prefix)),
        max_chars_(max_chars) {}

  const PieceMap& pieces() const override { return vocab_; }

  void encode_word(std::string_view word, std::vector<SubToken>& out) const override {
    const auto whole = SubToken{unk_id_, 0, static_cast<uint32_t>(word.size())};
    if (count_chars(word) > max_chars_) {
      out.push_back(whole);
      return;
    }
    const size_t first = out.size();
    std::string candidate;
    size_t start = 0;
    while (start < word.size()) {
      size_t end = word.size();
      int32_t found = -1;
      while (start < end) {
        std::string_view sub = word.substr(start, end - start);
        int32_t id = -1;
        if (start == 0) {
          auto it = vocab_.find(sub);
          if (it != vocab_.end()) id = it->second;
        } else {
          candidate.assign(prefix_);
          candidate.append(sub);
          auto it = vocab_.find(candidate);
          if (it != vocab_.end()) id = it->second;
        }
        if (id >= 0) {
          found = id;
          break;
        }
        // Drop the last character.
        size_t back = end - 1;
        while (back > start && (static_cast<uint8_t>(word[back]) & 0xC0) == 0x80) --back;
        end = back;
      }
      if (found < 0) {
        out.resize(first);
        out.push_back(whole);
        return;
      }
      out.push_back({found, static_cast<uint32_t>(start), static_cast<uint32_t>(end)});
      start = end;
    }
  }

 private:
  PieceMap vocab_;
  int32_t unk_id_;
  std::string prefix_;
  size_t max_chars_;
};

// A byte trie over the pieces, for common-prefix search from a position.
class PieceTrie {
 public:
  void insert(std::string_view key, int32_t id) {
    int32_t node = 0;
    for (char c : key) {
      const auto b = static_cast<uint8_t>(c);
      auto& ch = nodes_[static_cast<size_t>(node)].children;
      auto it = std::lower_bound(ch.begin(), ch.end(), std::make_pair(b, int32_t{-1}));
      if (it != ch.end() && it->first == b) {
        node = it->second;
        continue;
      }
      const auto next = static_cast<int32_t>(nodes_.size());
      ch.insert(it, {b, next});
      nodes_.emplace_back();
      node = next;
    }
    if (nodes_[static_cast<size_t>(node)].id < 0) nodes_[static_cast<size_t>(node)].id = id;
  }
  // Calls fn(length, id) for every piece that is a prefix of `text`, shortest first.
  template <typename F>
  void prefixes(std::string_view text, F&& fn) const {
    int32_t node = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      const auto b = static_cast<uint8_t>(text[i]);
      const auto& ch = nodes_[static_cast<size_t>(node)].children;
      auto it = std::lower_bound(ch.begin(), ch.end(), std::make_pair(b, int32_t{-1}));
      if (it == ch.end() || it->first != b) return;
      node = it->second;
      if (nodes_[static_cast<size_t>(node)].id >= 0)
        fn(i + 1, nodes_[static_cast<size_t>(node)].id);
    }
  }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t id = -1;
  };
  std::vector<Node> nodes_{Node{}};
};

class UnigramModel final : public SubwordModel {
 public:
  UnigramModel(std::vector<std::pair<std::string, double>> vocab, int32_t unk_id,
               bool byte_fallback)
      : unk_id_(unk_id), byte_fallback_(byte_fallback) {
    scores_.reserve(vocab.size());
    min_score_ = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < vocab.size(); ++i) {
      const auto id = static_cast<int32_t>(i);
      pieces_.emplace(vocab[i].first, id);  // the first of duplicate pieces wins
      trie_.insert(vocab[i].first, id);
      scores_.push_back(vocab[i].second);
      min_score_ = std::min(min_score_, vocab[i].second);
    }
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      auto it = pieces_.find(std::string_view(name));
      byte_ids_[static_cast<size_t>(b)] = it == pieces_.end() ? -1 : it->second;
    }
  }

  const PieceMap& pieces() const override { return pieces_; }

  void encode_word(std::string_view word, std::vector<SubToken>& out) const override {
    struct Node {
      int32_t id = -1;
      double score = 0.0;
      int64_t start = -1;  // -1: not reached
    };
    const size_t size = word.size();
    std::vector<Node> best(size + 1);
    const double unk_score = min_score_ - 10.0;
    for (size_t at = 0; at < size;) {
      const double here = best[at].score;
      const size_t mblen = char_len_at(word, at);
      bool has_single = false;
      trie_.prefixes(word.substr(at), [&](size_t len, int32_t id) {
        Node& target = best[at + len];
        const double candidate = scores_[static_cast<size_t>(id)] + here;
        if (target.start < 0 || candidate > target.score) {
          target = {id, candidate, static_cast<int64_t>(at)};
        }
        if (len == mblen) has_single = true;
      });
      if (!has_single) {
        Node& target = best[at + mblen];
        const double candidate = unk_score + here;
        if (target.start < 0 || candidate > target.score) {
          target = {unk_id_, candidate, static_cast<int64_t>(at)};
        }
      }
      at += mblen;
    }
    // Walk back, fusing consecutive unknown tokens.
    const size_t first = out.size();
    for (size_t end = size; end > 0;) {
      const Node& node = best[end];
      const auto start = static_cast<size_t>(node.start < 0 ? 0 : node.start);
      if (node.id == unk_id_ && out.size() > first && out.back().id == unk_id_ &&
          out.back().begin == end) {
        out.back().begin = static_cast<uint32_t>(start);
      } else {
        out.push_back({node.id, static_cast<uint32_t>(start), static_cast<uint32_t>(end)});
      }
      end = start;
    }
    std::reverse(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
    // A fused unknown run is looked up as a piece, then falls back to bytes.
    for (size_t i = first; i < out.size(); ++i) {
      if (out[i].id != unk_id_) continue;
      const std::string_view run = word.substr(out[i].begin, out[i].end - out[i].begin);
      if (auto it = pieces_.find(run); it != pieces_.end()) {
        out[i].id = it->second;
        continue;
      }
      if (!byte_fallback_) continue;
      bool all = true;
      for (char c : run) all = all && byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (!all) continue;
      const SubToken span = out[i];
      std::vector<SubToken> bytes;
      for (char c : run)
        bytes.push_back({byte_ids_[static_cast<uint8_t>(c)], span.begin, span.end});
      out.erase(out.begin() + static_cast<std::ptrdiff_t>(i));
      out.insert(out.begin() + static_cast<std::ptrdiff_t>(i), bytes.begin(), bytes.end());
      i += bytes.size() - 1;
    }
  }

 private:
  PieceMap pieces_;
  PieceTrie trie_;
  std::vector<double> scores_;
  double min_score_ = 0.0;
  int32_t unk_id_;
  bool byte_fallback_;
  std::array<int32_t, 256> byte_ids_{};
};

}  // namespace

Result<std::unique_ptr<SubwordModel>> make_wordpiece_model(const json& m) {
  const json& vocab = m.value("vocab", json());
  if (!vocab.is_object())
    return invalid_argument("tokenizer.json: model.vocab: expected an object", "model.vocab");
  PieceMap pieces;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() >= (int64_t{1} << 30)) {
      return invalid_argument("tokenizer.json: model.vocab['" + it.key() + "']: expected an id",
                              "model.vocab");
    }
    pieces.emplace(it.key(), it.value().get<int32_t>());
  }
  const std::string unk = m.value("unk_token", std::string("[UNK]"));
  auto unk_it = pieces.find(unk);
  if (unk_it == pieces.end()) {
    return invalid_argument("tokenizer.json: WordPiece unk_token '" + unk + "' is not in the vocab",
                            "model.unk_token");
  }
  const std::string prefix = m.value("continuing_subword_prefix", std::string("##"));
  int64_t max_chars = 100;
  if (auto mc = m.find("max_input_chars_per_word"); mc != m.end() && mc->is_number_integer())
    max_chars = mc->get<int64_t>();
  if (max_chars < 0) max_chars = 0;
  return std::unique_ptr<SubwordModel>(std::make_unique<WordPieceModel>(
      std::move(pieces), unk_it->second, prefix, static_cast<size_t>(max_chars)));
}

Result<std::unique_ptr<SubwordModel>> make_unigram_model(const json& m) {
  const json& vocab = m.value("vocab", json());
  if (!vocab.is_array() || vocab.empty())
    return invalid_argument("tokenizer.json: model.vocab: expected a list of [piece, score]",
                            "model.vocab");
  std::vector<std::pair<std::string, double>> pieces;
  pieces.reserve(vocab.size());
  for (const json& p : vocab) {
    if (!p.is_array() || p.size() != 2 || !p[0].is_string() || !p[1].is_number()) {
      return invalid_argument("tokenizer.json: model.vocab: expected [piece, score] pairs",
                              "model.vocab");
    }
    pieces.emplace_back(p[0].get<std::string>(), p[1].get<double>());
  }
  int64_t unk_id = -1;
  if (auto u = m.find("unk_id"); u != m.end() && u->is_number_integer()) unk_id = u->get<int64_t>();
  if (unk_id < 0 || unk_id >= static_cast<int64_t>(pieces.size())) {
    return invalid_argument("tokenizer.json: Unigram unk_id missing or out of range",
                            "model.unk_id");
  }
  const bool byte_fallback = m.value("byte_fallback", false);
  return std::unique_ptr<SubwordModel>(std::make_unique<UnigramModel>(
      std::move(pieces), static_cast<int32_t>(unk_id), byte_fallback));
}

}  // namespace turbine::tokenizer
