#include "tokenizer/hf_decoder.h"

#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"

namespace turbine::tokenizer {
namespace {

using nlohmann::json;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  size_t at = 0;
  for (size_t hit = text.find(from); hit != std::string_view::npos; hit = text.find(from, at)) {
    out.append(text.substr(at, hit - at)).append(to);
    at = hit + from.size();
  }
  out.append(text.substr(at));
  return out;
}

}  // namespace

Status HfDecoder::add(const json& config, bool& fused) {
  if (config.is_null()) return Status::ok();
  if (!config.is_object() || !config.contains("type") || !config["type"].is_string()) {
    return invalid_argument("decoder: expected an object with a \"type\"", "decoder");
  }
  const std::string type = config["type"].get<std::string>();
  if (type == "Sequence") {
    const json& list = config.value("decoders", json::array());
    if (!list.is_array())
      return invalid_argument("decoder Sequence: expected \"decoders\" list", "decoder");
    for (const json& item : list) TURBINE_RETURN_IF_ERROR(add(item, fused));
    return Status::ok();
  }
  if (type == "Fuse") {
    fused = true;
    return Status::ok();
  }
  Step step{Kind::kByteLevel, nullptr, {}, {}};
  if (type == "ByteLevel") {
    byte_level_ = true;
  } else if (type == "ByteFallback") {
    step.kind = Kind::kByteFallback;
  } else if (type == "Replace") {
    step.kind = Kind::kReplace;
    const json& pattern = config.value("pattern", json());
    if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string()) {
      TURBINE_ASSIGN_OR_RETURN(UnicodeRegex re,
                               UnicodeRegex::compile(pattern["String"].get<std::string>(), true));
      step.regex = std::make_shared<UnicodeRegex>(std::move(re));
    } else if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
      TURBINE_ASSIGN_OR_RETURN(UnicodeRegex re,
                               UnicodeRegex::compile(pattern["Regex"].get<std::string>()));
      step.regex = std::make_shared<UnicodeRegex>(std::move(re));
    } else {
      return invalid_argument("decoder Replace: expected a String or Regex pattern", "decoder");
    }
    step.content = config.value("content", std::string());
  } else if (type == "Strip") {
    const std::string content = config.value("content", std::string(" "));
    if (content.size() != 1)
      return unimplemented("decoder Strip: only single-byte content is supported", "decoder");
    const auto start = config.value("start", static_cast<size_t>(0));
    const auto stop = config.value("stop", static_cast<size_t>(0));
    if (fused) {
      strip_at_start_ = start;
      strip_char_ = content[0];
      return Status::ok();
    }
    step.kind = Kind::kStrip;
    step.content = content;
    step.start = start;
    step.stop = stop;
  } else if (type == "Metaspace") {
    step.kind = Kind::kMetaspace;
    step.replacement = config.value("replacement", std::string("\xE2\x96\x81"));
    step.content = " ";
    if (config.value("prepend_scheme", std::string("always")) != "never" &&
        config.value("add_prefix_space", true)) {
      // The Rust crate drops every replacement of the first token; after a Fuse the whole text
      // is that token.
      if (fused) {
        step.content.clear();
      } else {
        strip_at_start_ = 1;
        strip_char_ = ' ';
      }
    }
  } else {
    return unimplemented("decoder type '" + type + "' is not supported", "decoder");
  }
  steps_.push_back(std::move(step));
  return Status::ok();
}

Result<HfDecoder> HfDecoder::parse(const json& config) {
  HfDecoder d;
  bool fused = false;
  TURBINE_RETURN_IF_ERROR(d.add(config, fused));
  return d;
}

std::string HfDecoder::token_text(std::string_view piece, bool added) const {
  std::string text(piece);
  for (const Step& step : steps_) {
    switch (step.kind) {
      case Kind::kByteLevel:
        if (!added) text = byte_level_decode(text);
        break;
      case Kind::kReplace: text = step.regex->replace_all(text, step.content); break;
      case Kind::kByteFallback:
        if (text.size() == 6 && text.compare(0, 3, "<0x") == 0 && text[5] == '>') {
          const int hi = hex_value(text[3]);
          const int lo = hex_value(text[4]);
          if (hi >= 0 && lo >= 0) text = std::string(1, static_cast<char>(hi * 16 + lo));
        }
        break;
      case Kind::kStrip: {
        size_t begin = 0;
        while (begin < step.start && begin < text.size() && text[begin] == step.content[0]) ++begin;
        size_t end = text.size();
        for (size_t k = 0; k < step.stop && end > begin && text[end - 1] == step.content[0]; ++k)
          --end;
        text = text.substr(begin, end - begin);
        break;
      }
      case Kind::kMetaspace: text = replace_all(text, step.replacement, step.content); break;
    }
  }
  return text;
}

}  // namespace turbine::tokenizer
