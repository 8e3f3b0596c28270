#include "tokenizer/tokenizer_json.h"

#include <fstream>
#include <sstream>

namespace turbine::tokenizer {

using nlohmann::json;

bool json_bool(const json& j, const char* key, bool fallback) {
  const auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

std::string json_string(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string config_token_name(const json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return {};
}

BpeModel::Options bpe_options(const json& model) {
  BpeModel::Options options;
  options.byte_fallback = json_bool(model, "byte_fallback", false);
  options.fuse_unk = json_bool(model, "fuse_unk", false);
  options.ignore_merges = json_bool(model, "ignore_merges", false);
  options.continuing_subword_prefix = json_string(model, "continuing_subword_prefix");
  options.end_of_word_suffix = json_string(model, "end_of_word_suffix");
  return options;
}

Status add_bpe_merges(const json& merges, MergeSecond second, BpeModel& model) {
  for (const json& merge : merges) {
    if (merge.is_string()) {
      const std::string& s = merge.get_ref<const std::string&>();
      const size_t space = s.find(' ', 1);
      if (space == std::string::npos) {
        return invalid_argument("tokenizer.json: model.merges: '" + s + "' is not \"a b\"",
                                "model.merges");
      }
      const size_t end = second == MergeSecond::kToSpace ? s.find(' ', space + 1) : s.npos;
      (void)model.add_merge(
          std::string_view(s).substr(0, space),
          std::string_view(s).substr(space + 1, end == s.npos ? s.npos : end - space - 1));
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      (void)model.add_merge(merge[0].get_ref<const std::string&>(),
                            merge[1].get_ref<const std::string&>());
    } else {
      return invalid_argument("tokenizer.json: model.merges: expected \"a b\" or [a, b]",
                              "model.merges");
    }
  }
  return Status::ok();
}

Result<std::vector<int32_t>> special_token_ids(const json& specials, const std::string& name) {
  const auto sp = specials.find(name);
  if (sp == specials.end() || !sp->contains("ids") || !(*sp)["ids"].is_array()) {
    return invalid_argument("tokenizer.json: post_processor: unknown special token '" + name + "'",
                            "post_processor");
  }
  std::vector<int32_t> ids;
  for (const json& id : (*sp)["ids"]) {
    if (!id.is_number_integer())
      return invalid_argument("tokenizer.json: post_processor: bad id", "post_processor");
    ids.push_back(id.get<int32_t>());
  }
  return ids;
}

Result<std::string> read_tokenizer_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot open " + path.string(), path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return data_loss("cannot read " + path.string(), path.string());
  return ss.str();
}

}  // namespace turbine::tokenizer
