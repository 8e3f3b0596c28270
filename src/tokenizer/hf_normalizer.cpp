#include "tokenizer/hf_normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "tokenizer/precompiled_charsmap.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/utf8.h"

namespace turbine::tokenizer {
namespace {

using nlohmann::json;

bool is_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<uint8_t>(c) >= 0x80) return false;
  }
  return true;
}

std::string map_with(std::string_view text, int options) {
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                          static_cast<utf8proc_ssize_t>(text.size()), &out,
                                          static_cast<utf8proc_option_t>(options));
  if (n < 0 || out == nullptr) {
    std::free(out);
    return std::string(text);  // only on ill-formed input, which callers never pass
  }
  std::string result(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

Result<std::shared_ptr<UnicodeRegex>> parse_pattern(const json& pattern) {
  if (pattern.is_object()) {
    if (auto s = pattern.find("String"); s != pattern.end() && s->is_string()) {
      TURBINE_ASSIGN_OR_RETURN(UnicodeRegex re, UnicodeRegex::compile(s->get<std::string>(), true));
      return std::make_shared<UnicodeRegex>(std::move(re));
    }
    if (auto r = pattern.find("Regex"); r != pattern.end() && r->is_string()) {
      TURBINE_ASSIGN_OR_RETURN(UnicodeRegex re, UnicodeRegex::compile(r->get<std::string>()));
      return std::make_shared<UnicodeRegex>(std::move(re));
    }
  }
  return invalid_argument(
      "normalizer Replace: pattern: expected {\"String\": ...} or {\"Regex\": ...}", "normalizer");
}

// BertNormalizer: its options as the plain steps they stand for.
void add_bert_normalizer(const json& config, std::vector<NormalizerStep>& steps) {
  using Kind = NormalizerStep::Kind;
  const bool lower = json_bool(config, "lowercase", true);
  // strip_accents: null means "as lowercase".
  const bool strip = json_bool(config, "strip_accents", lower);
  if (json_bool(config, "clean_text", true)) steps.push_back({Kind::kBertClean, {}, {}});
  if (json_bool(config, "handle_chinese_chars", true))
    steps.push_back({Kind::kBertChinese, {}, {}});
  if (strip) steps.push_back({Kind::kStripAccents, {}, {}});
  if (lower) steps.push_back({Kind::kLowercase, {}, {}});
}

Result<std::shared_ptr<const PrecompiledCharsmap>> parse_precompiled(const json& config) {
  const auto it = config.find("precompiled_charsmap");
  std::string blob;
  if (it != config.end() && it->is_string()) {
    auto decoded = base64_decode(it->get<std::string>());
    if (!decoded)
      return invalid_argument("normalizer Precompiled: precompiled_charsmap is not base64",
                              "normalizer");
    blob = std::move(*decoded);
  } else if (it != config.end() && !it->is_null()) {
    return invalid_argument("normalizer Precompiled: precompiled_charsmap: expected a string",
                            "normalizer");
  }
  TURBINE_ASSIGN_OR_RETURN(PrecompiledCharsmap map, PrecompiledCharsmap::parse(blob));
  return std::make_shared<const PrecompiledCharsmap>(std::move(map));
}

}  // namespace

std::string unicode_normalize(std::string_view text, std::string_view form) {
  if (is_ascii(text)) return std::string(text);  // ASCII is invariant under all four forms
  int options = UTF8PROC_STABLE;
  if (form == "NFC") options |= UTF8PROC_COMPOSE;
  if (form == "NFD") options |= UTF8PROC_DECOMPOSE;
  if (form == "NFKC") options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
  if (form == "NFKD") options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
  return map_with(text, options);
}

bool is_js_whitespace(uint32_t cp) {
  switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
    case 0xFEFF: return true;
    default: return cp >= 0x2000 && cp <= 0x200A;
  }
}

Status parse_normalizer_steps(const json& config, bool with_bert,
                              std::vector<NormalizerStep>& steps) {
  using Kind = NormalizerStep::Kind;
  if (config.is_null()) return Status::ok();
  if (!config.is_object() || !config.contains("type") || !config["type"].is_string()) {
    return invalid_argument("normalizer: expected an object with a \"type\"", "normalizer");
  }
  const std::string type = config["type"].get<std::string>();
  if (type == "Sequence") {
    const json& list = config.value("normalizers", json::array());
    if (!list.is_array())
      return invalid_argument("normalizer Sequence: expected \"normalizers\" list", "normalizer");
    for (const json& item : list)
      TURBINE_RETURN_IF_ERROR(parse_normalizer_steps(item, with_bert, steps));
    return Status::ok();
  }
  if (type == "NFC") return steps.push_back({Kind::kNfc, {}, {}}), Status::ok();
  if (type == "NFD") return steps.push_back({Kind::kNfd, {}, {}}), Status::ok();
  if (type == "NFKC") return steps.push_back({Kind::kNfkc, {}, {}}), Status::ok();
  if (type == "NFKD") return steps.push_back({Kind::kNfkd, {}, {}}), Status::ok();
  if (type == "Lowercase") return steps.push_back({Kind::kLowercase, {}, {}}), Status::ok();
  if (type == "StripAccents") return steps.push_back({Kind::kStripAccents, {}, {}}), Status::ok();
  if (type == "Prepend") {
    steps.push_back({Kind::kPrepend, config.value("prepend", std::string()), {}});
    return Status::ok();
  }
  if (type == "Strip") {
    NormalizerStep step{Kind::kStrip, {}, {}};
    step.left = config.value("strip_left", false);
    step.right = config.value("strip_right", false);
    steps.push_back(std::move(step));
    return Status::ok();
  }
  if (type == "Replace") {
    TURBINE_ASSIGN_OR_RETURN(std::shared_ptr<UnicodeRegex> re,
                             parse_pattern(config.value("pattern", json())));
    steps.push_back({Kind::kReplace, config.value("content", std::string()), std::move(re)});
    return Status::ok();
  }
  if (with_bert) {
    if (type == "BertNormalizer") return add_bert_normalizer(config, steps), Status::ok();
    if (type == "Nmt") return steps.push_back({Kind::kNmt, {}, {}}), Status::ok();
    if (type == "Precompiled") {
      NormalizerStep step{Kind::kPrecompiled, {}, {}};
      TURBINE_ASSIGN_OR_RETURN(step.charsmap, parse_precompiled(config));
      steps.push_back(std::move(step));
      return Status::ok();
    }
  }
  return unimplemented("normalizer type '" + type + "' is not supported", "normalizer");
}

Result<HfNormalizer> HfNormalizer::parse(const json& config) {
  HfNormalizer n;
  TURBINE_RETURN_IF_ERROR(parse_normalizer_steps(config, /*with_bert=*/false, n.steps_));
  return n;
}

void HfNormalizer::normalize(std::string& text) const {
  for (const Step& step : steps_) {
    switch (step.kind) {
      case Kind::kNfc: text = unicode_normalize(text, "NFC"); break;
      case Kind::kNfd: text = unicode_normalize(text, "NFD"); break;
      case Kind::kNfkc: text = unicode_normalize(text, "NFKC"); break;
      case Kind::kNfkd: text = unicode_normalize(text, "NFKD"); break;
      case Kind::kPrepend: text.insert(0, step.text); break;
      case Kind::kReplace: text = step.regex->replace_all(text, step.text); break;
      case Kind::kLowercase: {
        std::string out;
        out.reserve(text.size());
        for (size_t i = 0; i < text.size();) {
          append_code_point(out, static_cast<uint32_t>(utf8proc_tolower(
                                     static_cast<utf8proc_int32_t>(next_code_point(text, i)))));
        }
        text = std::move(out);
        break;
      }
      case Kind::kStripAccents: {
        std::string out;
        out.reserve(text.size());
        for (size_t i = 0; i < text.size();) {
          const uint32_t cp = next_code_point(text, i);
          const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
          if (cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC ||
              cat == UTF8PROC_CATEGORY_ME)
            continue;
          append_code_point(out, cp);
        }
        text = std::move(out);
        break;
      }
      case Kind::kStrip: {
        size_t begin = 0;
        size_t end = text.size();
        if (step.left) {
          while (begin < end) {
            size_t i = begin;
            if (!is_js_whitespace(next_code_point(text, i))) break;
            begin = i;
          }
        }
        if (step.right) {
          while (end > begin) {
            size_t start = end - 1;
            while (start > begin && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
            size_t i = start;
            if (!is_js_whitespace(next_code_point(text, i))) break;
            end = start;
          }
        }
        text = text.substr(begin, end - begin);
        break;
      }
      case Kind::kBertClean:
      case Kind::kBertChinese:
      case Kind::kNmt:
      case Kind::kPrecompiled: break;  // not parsed for this normalizer (with_bert is false)
    }
  }
}

}  // namespace turbine::tokenizer
