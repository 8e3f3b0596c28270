#include "tokenizer/aligned_pre_tokenizer.h"

#include <nlohmann/json.hpp>

#include "tokenizer/aligned_normalizer.h"
#include "tokenizer/utf8.h"

namespace turbine::tokenizer {
namespace {

using nlohmann::json;

// Cuts `piece` by `spans` (split_by_spans semantics) and appends the slices to `out`.
void cut(const AlignedText& piece, const std::vector<std::pair<size_t, size_t>>& spans,
         HfPreTokenizer::Behavior behavior, bool invert, std::vector<AlignedText>& out) {
  std::vector<std::string_view> views;
  split_by_spans(piece.text, spans, behavior, invert, views);
  for (std::string_view v : views) {
    const auto b = static_cast<size_t>(v.data() - piece.text.data());
    out.push_back(piece.slice(b, b + v.size()));
  }
}

}  // namespace

Result<AlignedPreTokenizer> AlignedPreTokenizer::parse(const json& config) {
  AlignedPreTokenizer p;
  TURBINE_RETURN_IF_ERROR(parse_pre_tokenizer_steps(config, /*with_bert=*/true, p.steps_));
  return p;
}

void AlignedPreTokenizer::apply(const Step& step, const AlignedText& piece,
                                std::vector<AlignedText>& out) {
  std::vector<std::pair<size_t, size_t>> spans;
  switch (step.kind) {
    case Kind::kBert: {
      // Whitespace removed, then punctuation isolated.
      std::vector<AlignedText> words;
      char_spans(piece.text, is_unicode_whitespace, false, spans);
      cut(piece, spans, Behavior::kRemoved, false, words);
      for (const AlignedText& w : words) {
        spans.clear();
        char_spans(w.text, is_bert_punctuation, true, spans);
        cut(w, spans, Behavior::kIsolated, false, out);
      }
      return;
    }
    case Kind::kWhitespaceSplit:
      char_spans(piece.text, is_unicode_whitespace, false, spans);
      cut(piece, spans, Behavior::kRemoved, false, out);
      return;
    case Kind::kPunctuation:
      char_spans(piece.text, is_bert_punctuation, true, spans);
      cut(piece, spans, step.behavior, false, out);
      return;
    case Kind::kDigits:
      char_spans(piece.text, is_unicode_numeric, step.individual_digits, spans);
      cut(piece, spans, step.individual_digits ? Behavior::kIsolated : Behavior::kContiguous, false,
          out);
      return;
    case Kind::kSplit:
      if (!step.regex->find_all(piece.text, spans)) {
        out.push_back(piece);  // resource limit: keep the text whole rather than lose it
        return;
      }
      cut(piece, spans, step.behavior, step.invert, out);
      return;
    case Kind::kMetaspace: {
      // Spaces become the replacement (each taking its space's span); the replacement is
      // prepended (taking the first character's span) as the scheme asks.
      AlignedText t;
      for (size_t i = 0; i < piece.text.size(); ++i) {
        if (piece.text[i] == ' ') {
          t.push_bytes(step.replacement, piece.align[i]);
        } else {
          t.text.push_back(piece.text[i]);
          t.align.push_back(piece.align[i]);
        }
      }
      const bool starts = t.text.compare(0, step.replacement.size(), step.replacement) == 0;
      const bool prepend =
          !t.empty() && !starts &&
          (step.prepend_scheme == 0 || (step.prepend_scheme == 1 && t.align[0].begin == 0));
      if (prepend) {
        AlignedText p;
        p.push_bytes(step.replacement, t.align[0]);
        p.text += t.text;
        p.align.insert(p.align.end(), t.align.begin(), t.align.end());
        t = std::move(p);
      }
      if (!step.split) {
        if (!t.empty()) out.push_back(std::move(t));
        return;
      }
      size_t pos = 0;
      while ((pos = t.text.find(step.replacement, pos)) != std::string::npos) {
        spans.emplace_back(pos, pos + step.replacement.size());
        pos += step.replacement.size();
      }
      cut(t, spans, Behavior::kMergedWithNext, false, out);
      return;
    }
    case Kind::kByteLevel: {
      AlignedText t = piece;
      if (step.add_prefix_space && !t.empty() && t.text[0] != ' ') {
        AlignedText p;
        p.push_bytes(" ", t.align[0]);
        p.text += t.text;
        p.align.insert(p.align.end(), t.align.begin(), t.align.end());
        t = std::move(p);
      }
      if (step.regex == nullptr || !step.regex->find_all(t.text, spans)) {
        if (!t.empty()) out.push_back(std::move(t));
        return;
      }
      cut(t, spans, Behavior::kIsolated, false, out);
      return;
    }
  }
}

bool AlignedPreTokenizer::split(AlignedText text, std::vector<AlignedText>& words) const {
  std::vector<AlignedText> current;
  current.push_back(std::move(text));
  bool byte_level = false;
  std::vector<AlignedText> next;
  for (const Step& step : steps_) {
    next.clear();
    for (const AlignedText& piece : current) {
      if (!piece.empty()) apply(step, piece, next);
    }
    current.swap(next);
    if (step.kind == Kind::kByteLevel) byte_level = true;
  }
  for (AlignedText& w : current) {
    if (!w.empty()) words.push_back(std::move(w));
  }
  return byte_level;
}

}  // namespace turbine::tokenizer
