// Reading tokenizer.json and tokenizer_config.json: the field accessors, file loading and the
// BPE model parts that HfTokenizer and PipelineTokenizer both parse. Internal to the tokenizer
// module (it brings in the whole JSON library).
#pragma once

#include <cstdint>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "tokenizer/bpe_model.h"

namespace turbine::tokenizer {

// j[key] when it has the type, else the fallback ("" for strings).
bool json_bool(const nlohmann::json& j, const char* key, bool fallback);
std::string json_string(const nlohmann::json& j, const char* key);

// tokenizer_config.json names tokens as strings or as {"content": ...} objects; "" if neither.
std::string config_token_name(const nlohmann::json& config, const char* key);

// BpeModel options of a tokenizer.json BPE "model" (unk_id is the caller's).
BpeModel::Options bpe_options(const nlohmann::json& model);

// How a merge string "a b" is cut: the second part ends at the next space, or runs to the end.
enum class MergeSecond { kToSpace, kToEnd };
// Adds tokenizer.json "merges" ("a b" strings or [a, b] pairs) to `model`.
Status add_bpe_merges(const nlohmann::json& merges, MergeSecond second, BpeModel& model);

// The ids of post-processor special token `name` in TemplateProcessing's "special_tokens".
Result<std::vector<int32_t>> special_token_ids(const nlohmann::json& specials,
                                               const std::string& name);

Result<std::string> read_tokenizer_file(const std::filesystem::path& path);

// Parses tokenizer.json and tokenizer_config.json (may be empty) and runs build(tok, config);
// the JSON library throws on type mismatches deep inside, and this is the module edge for it.
template <class T, class Build>
Result<std::unique_ptr<T>> build_from_json(std::string_view tokenizer_json,
                                           std::string_view tokenizer_config_json, Build build) {
  using nlohmann::json;
  try {
    json tok = json::parse(tokenizer_json, nullptr, /*allow_exceptions=*/false);
    if (tok.is_discarded()) return invalid_argument("tokenizer.json: not valid JSON");
    json config = json::object();
    if (!tokenizer_config_json.empty()) {
      config = json::parse(tokenizer_config_json, nullptr, false);
      if (config.is_discarded()) return invalid_argument("tokenizer_config.json: not valid JSON");
    }
    return build(tok, config);
  } catch (const std::exception& e) {
    return invalid_argument(std::string("tokenizer.json: ") + e.what());
  }
}

// Reads tokenizer.json and (when named) tokenizer_config.json and runs from_json(tok, config)
// on their text; errors are prefixed with the tokenizer.json path.
template <class T, class FromJson>
Result<std::unique_ptr<T>> build_from_files(const std::filesystem::path& tokenizer_json,
                                            const std::filesystem::path& tokenizer_config,
                                            FromJson from_json) {
  TURBINE_ASSIGN_OR_RETURN(std::string tok, read_tokenizer_file(tokenizer_json));
  std::string config;
  if (!tokenizer_config.empty()) {
    TURBINE_ASSIGN_OR_RETURN(config, read_tokenizer_file(tokenizer_config));
  }
  Result<std::unique_ptr<T>> result = from_json(tok, config);
  if (!result.has_value()) {
    const Status s = result.status();
    return Status(s.code(), tokenizer_json.string() + ": " + s.message(), s.field());
  }
  return result;
}

}  // namespace turbine::tokenizer
