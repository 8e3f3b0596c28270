#include "tokenizer/hf_pre_tokenizer.h"

#include <utf8proc.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace turbine::tokenizer {
namespace {

using nlohmann::json;

// GPT-2's pattern as tokenizers.js runs it: JavaScript's \s (which, unlike Oniguruma's, includes
// U+FEFF and excludes U+0085). The Rust crate differs from the JS port only for those two
// characters; we follow the JS port, which the parity test compares against.
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

// `type`: the step's type, for the error.
Result<SplitBehavior> parse_behavior(const json& config, const std::string& type) {
  const std::string b = config.value("behavior", std::string("Isolated"));
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  return invalid_argument("pre_tokenizer " + type + ": unknown behavior '" + b + "'",
                          "pre_tokenizer");
}

bool is_numeric(uint32_t cp) {
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool is_white_space(uint32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85) return true;
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

}  // namespace

void split_by_spans(std::string_view text, const std::vector<std::pair<size_t, size_t>>& spans,
                    HfPreTokenizer::Behavior behavior, bool invert,
                    std::vector<std::string_view>& out) {
  using Behavior = HfPreTokenizer::Behavior;
  struct Segment {
    size_t begin, end;
    bool is_match;
  };
  std::vector<Segment> segments;
  segments.reserve(spans.size() * 2 + 1);
  size_t at = 0;
  for (const auto& [b, e] : spans) {
    if (b > at) segments.push_back({at, b, invert});
    segments.push_back({b, e, !invert});
    at = e;
  }
  if (at < text.size()) segments.push_back({at, text.size(), invert});

  std::vector<std::pair<size_t, size_t>> merged;
  merged.reserve(segments.size());
  switch (behavior) {
    case Behavior::kRemoved:
      for (const Segment& s : segments) {
        if (!s.is_match) merged.emplace_back(s.begin, s.end);
      }
      break;
    case Behavior::kIsolated:
      for (const Segment& s : segments) merged.emplace_back(s.begin, s.end);
      break;
    case Behavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Segment& s : segments) {
        if (s.is_match && !previous_match && !merged.empty()) {
          merged.back().second = s.end;
        } else {
          merged.emplace_back(s.begin, s.end);
        }
        previous_match = s.is_match;
      }
      break;
    }
    case Behavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
        if (it->is_match && !previous_match && !merged.empty()) {
          merged.back().first = it->begin;
        } else {
          merged.emplace_back(it->begin, it->end);
        }
        previous_match = it->is_match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    }
    case Behavior::kContiguous: {
      bool previous_match = false;
      for (const Segment& s : segments) {
        if (s.is_match == previous_match && !merged.empty()) {
          merged.back().second = s.end;
        } else {
          merged.emplace_back(s.begin, s.end);
        }
        previous_match = s.is_match;
      }
      break;
    }
  }
  for (const auto& [b, e] : merged) {
    if (e > b) out.push_back(text.substr(b, e - b));
  }
}

Status parse_pre_tokenizer_steps(const json& config, bool with_bert,
                                 std::vector<PreTokenizerStep>& steps) {
  using Kind = PreTokenizerStep::Kind;
  if (config.is_null()) return Status::ok();
  if (!config.is_object() || !config.contains("type") || !config["type"].is_string()) {
    return invalid_argument("pre_tokenizer: expected an object with a \"type\"", "pre_tokenizer");
  }
  const std::string type = config["type"].get<std::string>();
  PreTokenizerStep step;
  if (type == "Sequence") {
    const json& list = config.value("pretokenizers", json::array());
    if (!list.is_array())
      return invalid_argument("pre_tokenizer Sequence: expected \"pretokenizers\" list",
                              "pre_tokenizer");
    for (const json& item : list)
      TURBINE_RETURN_IF_ERROR(parse_pre_tokenizer_steps(item, with_bert, steps));
    return Status::ok();
  }
  if (type == "BertPreTokenizer" && with_bert) {
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
    TURBINE_ASSIGN_OR_RETURN(step.behavior, parse_behavior(config, type));
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
  } else if (type == "Punctuation" && with_bert) {
    step.kind = Kind::kPunctuation;
    TURBINE_ASSIGN_OR_RETURN(step.behavior, parse_behavior(config, type));
  } else if (type == "Digits") {
    step.kind = Kind::kDigits;
    step.individual_digits = config.value("individual_digits", false);
  } else if (type == "Whitespace") {
    step.kind = Kind::kSplit;
    TURBINE_ASSIGN_OR_RETURN(step.regex, compile_shared("\\w+|[^\\w\\s]+", false));
    step.behavior = SplitBehavior::kRemoved;
    step.invert = true;
  } else if (type == "WhitespaceSplit") {
    step.kind = Kind::kWhitespaceSplit;
  } else {
    return unimplemented("pre_tokenizer type '" + type + "' is not supported", "pre_tokenizer");
  }
  steps.push_back(std::move(step));
  return Status::ok();
}

Result<HfPreTokenizer> HfPreTokenizer::parse(const json& config) {
  HfPreTokenizer p;
  TURBINE_RETURN_IF_ERROR(parse_pre_tokenizer_steps(config, /*with_bert=*/false, p.steps_));
  return p;
}

void HfPreTokenizer::apply(const Step& step, std::string_view piece, bool first_piece,
                           size_t section_index, PreTokens& out) const {
  thread_local std::vector<std::pair<size_t, size_t>> spans;
  spans.clear();
  switch (step.kind) {
    case Kind::kSplit:
      if (!step.regex->find_all(piece, spans)) {
        out.pieces.push_back(piece);  // resource limit: keep the text whole rather than lose it
        return;
      }
      split_by_spans(piece, spans, step.behavior, step.invert, out.pieces);
      return;
    case Kind::kByteLevel: {
      if (step.add_prefix_space && (piece.empty() || piece.front() != ' ')) {
        out.storage.push_back(" " + std::string(piece));
        piece = out.storage.back();
      }
      if (step.regex == nullptr) {
        out.pieces.push_back(piece);
        return;
      }
      if (!step.regex->find_all(piece, spans)) {
        out.pieces.push_back(piece);
        return;
      }
      // Text the pattern does not match is dropped, as in both the JS and the Rust versions.
      for (const auto& [b, e] : spans) out.pieces.push_back(piece.substr(b, e - b));
      return;
    }
    case Kind::kMetaspace: {
      std::string text;
      text.reserve(piece.size() + step.replacement.size());
      for (char c : piece) {
        if (c == ' ') {
          text.append(step.replacement);
        } else {
          text.push_back(c);
        }
      }
      const bool starts = text.compare(0, step.replacement.size(), step.replacement) == 0;
      if (!starts && (step.prepend_scheme == 0 ||
                      (step.prepend_scheme == 1 && section_index == 0 && first_piece))) {
        text.insert(0, step.replacement);
      }
      out.storage.push_back(std::move(text));
      const std::string_view stored = out.storage.back();
      if (!step.split) {
        out.pieces.push_back(stored);
        return;
      }
      for (size_t at = stored.find(step.replacement); at != std::string_view::npos;
           at = stored.find(step.replacement, at + step.replacement.size())) {
        spans.emplace_back(at, at + step.replacement.size());
      }
      split_by_spans(stored, spans, Behavior::kMergedWithNext, false, out.pieces);
      return;
    }
    case Kind::kDigits:
      char_spans(piece, is_numeric, step.individual_digits, spans);
      split_by_spans(piece, spans, Behavior::kIsolated, false, out.pieces);
      return;
    case Kind::kWhitespaceSplit:
      char_spans(piece, is_white_space, false, spans);
      split_by_spans(piece, spans, Behavior::kRemoved, false, out.pieces);
      return;
    case Kind::kBert:
    case Kind::kPunctuation:
      out.pieces.push_back(piece);  // not parsed for this pre-tokenizer (with_bert is false)
      return;
  }
}

void HfPreTokenizer::pre_tokenize(std::string_view text, size_t section_index,
                                  PreTokens& out) const {
  if (steps_.empty()) {
    out.pieces.push_back(text);
    return;
  }
  // Each step maps the current pieces to new ones; the first step reads `text`.
  std::vector<std::string_view> current{text};
  std::vector<std::string_view> next;
  bool byte_level = false;
  for (const Step& step : steps_) {
    if (byte_level) {
      // A step after ByteLevel sees the mapped characters, as in the reference implementations.
      for (std::string_view& piece : current) {
        std::string mapped;
        byte_level_encode(piece, mapped);
        out.storage.push_back(std::move(mapped));
        piece = out.storage.back();
      }
      byte_level = false;
    }
    PreTokens scratch;
    scratch.storage.swap(out.storage);
    for (size_t i = 0; i < current.size(); ++i)
      apply(step, current[i], i == 0, section_index, scratch);
    out.storage.swap(scratch.storage);
    next.swap(scratch.pieces);
    current.swap(next);
    next.clear();
    if (step.kind == Kind::kByteLevel) byte_level = true;
  }
  out.byte_level = byte_level;
  out.pieces.insert(out.pieces.end(), current.begin(), current.end());
}

}  // namespace turbine::tokenizer
