#include "tokenizer/aligned_pre_tokenizer.h"

#include <nlohmann/json.hpp>

#include "tokenizer/aligned_normalizer.h"
#include "tokenizer/utf8.h"

namespace turbine::tokenizer {
namespace {

using nlohmann::json;

// GPT-2's pattern with JavaScript's \s, as hf_pre_tokenizer.cpp runs it (the BPE parity test
// compares against tokenizers.js).
#define TURBINE_JS_SPACE \
  "\\t\\n\\x{B}\\f\\r "  \
  "\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}"
constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" TURBINE_JS_SPACE
    "\\p{L}\\p{N}]+|[" TURBINE_JS_SPACE "]+(?![^" TURBINE_JS_SPACE "])|[" TURBINE_JS_SPACE "]+";
#undef TURBINE_JS_SPACE

Result<std::shared_ptr<UnicodeRegex>> compile_shared(std::string_view pattern, bool literal) {
  TURBINE_ASSIGN_OR_RETURN(UnicodeRegex re, UnicodeRegex::compile(pattern, literal));
  return std::make_shared<UnicodeRegex>(std::move(re));
}

Result<HfPreTokenizer::Behavior> parse_behavior(const json& config) {
  const std::string b = config.value("behavior", std::string("Isolated"));
  if (b == "Removed") return HfPreTokenizer::Behavior::kRemoved;
  if (b == "Isolated") return HfPreTokenizer::Behavior::kIsolated;
  if (b == "MergedWithPrevious") return HfPreTokenizer::Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return HfPreTokenizer::Behavior::kMergedWithNext;
  if (b == "Contiguous") return HfPreTokenizer::Behavior::kContiguous;
  return invalid_argument("pre_tokenizer: unknown behavior '" + b + "'", "pre_tokenizer");
}

// Spans of characters for which `pred` holds: each alone (`single`) or maximal runs.
template <typename Pred>
void char_spans(std::string_view text, Pred pred, bool single,
                std::vector<std::pair<size_t, size_t>>& spans) {
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    const uint32_t cp = next_code_point(text, i);
    if (!pred(cp)) continue;
    if (!single && !spans.empty() && spans.back().second == start) {
      spans.back().second = i;
    } else {
      spans.emplace_back(start, i);
    }
  }
}

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

Status AlignedPreTokenizer::add(const json& config, std::vector<Step>& steps) {
  if (config.is_null()) return Status::ok();
  if (!config.is_object() || !config.contains("type") || !config["type"].is_string()) {
    return invalid_argument("pre_tokenizer: expected an object with a \"type\"", "pre_tokenizer");
  }
  const std::string type = config["type"].get<std::string>();
  Step step;
  if (type == "Sequence") {
    const json& list = config.value("pretokenizers", json::array());
    if (!list.is_array())
      return invalid_argument("pre_tokenizer Sequence: expected \"pretokenizers\" list",
                              "pre_tokenizer");
    for (const json& item : list) TURBINE_RETURN_IF_ERROR(add(item, steps));
    return Status::ok();
  }
  if (type == "BertPreTokenizer") {
    step.kind = Kind::kBert;
  } else if (type == "Split") {
    step.kind = Kind::kSplit;
    const json& pattern = config.value("pattern", json());
    if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string()) {
      TURBINE_ASSIGN_OR_RETURN(step.regex,
                               compile_shared(pattern["String"].get<std::string>(), true));
    } else if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
      TURBINE_ASSIGN_OR_RETURN(step.regex,
                               compile_shared(pattern["Regex"].get<std::string>(), false));
    } else {
      return invalid_argument("pre_tokenizer Split: expected a String or Regex pattern",
                              "pre_tokenizer");
    }
    TURBINE_ASSIGN_OR_RETURN(step.behavior, parse_behavior(config));
    step.invert = config.value("invert", false);
  } else if (type == "ByteLevel") {
    step.kind = Kind::kByteLevel;
    step.add_prefix_space = config.value("add_prefix_space", false);
    if (config.value("use_regex", true)) {
      TURBINE_ASSIGN_OR_RETURN(step.regex, compile_shared(kGpt2Pattern, false));
    }
  } else if (type == "Metaspace") {
    step.kind = Kind::kMetaspace;
    step.replacement = config.value("replacement", std::string("\xE2\x96\x81"));
    if (step.replacement.empty())
      return invalid_argument("pre_tokenizer Metaspace: empty replacement", "pre_tokenizer");
    std::string scheme = config.value("prepend_scheme", std::string());
    if (scheme.empty()) scheme = config.value("add_prefix_space", true) ? "always" : "never";
    if (scheme == "always") {
      step.prepend_scheme = 0;
    } else if (scheme == "first") {
      step.prepend_scheme = 1;
    } else if (scheme == "never") {
      step.prepend_scheme = 2;
    } else {
      return invalid_argument("pre_tokenizer Metaspace: unknown prepend_scheme '" + scheme + "'",
                              "pre_tokenizer");
    }
    step.split = config.value("split", true);
  } else if (type == "Punctuation") {
    step.kind = Kind::kPunctuation;
    TURBINE_ASSIGN_OR_RETURN(step.behavior, parse_behavior(config));
  } else if (type == "Digits") {
    step.kind = Kind::kDigits;
    step.individual_digits = config.value("individual_digits", false);
  } else if (type == "Whitespace") {
    step.kind = Kind::kSplit;
    TURBINE_ASSIGN_OR_RETURN(step.regex, compile_shared("\\w+|[^\\w\\s]+", false));
    step.behavior = Behavior::kRemoved;
    step.invert = true;
  } else if (type == "WhitespaceSplit") {
    step.kind = Kind::kWhitespaceSplit;
  } else {
    return unimplemented("pre_tokenizer type '" + type + "' is not supported", "pre_tokenizer");
  }
  steps.push_back(std::move(step));
  return Status::ok();
}

Result<AlignedPreTokenizer> AlignedPreTokenizer::parse(const json& config) {
  AlignedPreTokenizer p;
  TURBINE_RETURN_IF_ERROR(add(config, p.steps_));
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
