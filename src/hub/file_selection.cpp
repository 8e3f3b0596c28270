#include "hub/file_selection.h"

#include <algorithm>
#include <array>
#include <set>

#include <boost/json.hpp>

namespace turbine::hub {
namespace {

constexpr std::array<std::string_view, 8> kWantedNames = {
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "model.safetensors.index.json",
    // Newer transformers releases store the chat template here instead of tokenizer_config.json.
    "chat_template.jinja",
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_safetensors(std::string_view name) {
  return ends_with(name, ".safetensors");
}

}  // namespace

bool is_wanted_file(std::string_view rfilename) {
  if (rfilename.empty() || rfilename.find('/') != std::string_view::npos ||
      rfilename.find('\\') != std::string_view::npos) {
    return false;
  }
  if (is_safetensors(rfilename)) return rfilename != ".safetensors";
  return std::find(kWantedNames.begin(), kWantedNames.end(), rfilename) != kWantedNames.end();
}

Result<std::vector<std::string>> shards_from_index(std::string_view index_json) {
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(index_json, ec);
  if (ec) {
    return data_loss("model.safetensors.index.json is not valid JSON: " + ec.message(),
                     std::string(kSafetensorsIndexFile));
  }
  const auto* obj = doc.if_object();
  const auto* map = obj ? obj->if_contains("weight_map") : nullptr;
  if (map == nullptr || !map->is_object()) {
    return data_loss("model.safetensors.index.json has no weight_map object", "weight_map");
  }
  std::set<std::string> shards;
  for (const auto& kv : map->get_object()) {
    const auto* file = kv.value().if_string();
    if (file == nullptr) {
      return data_loss("weight_map entry is not a string", "weight_map." + std::string(kv.key()));
    }
    shards.emplace(*file);
  }
  return std::vector<std::string>(shards.begin(), shards.end());
}

std::vector<std::string> select_files(const std::vector<std::string>& siblings,
                                      const std::vector<std::string>* index_shards) {
  std::set<std::string_view> keep_shards;
  if (index_shards != nullptr) keep_shards.insert(index_shards->begin(), index_shards->end());

  std::vector<std::string> index;
  std::vector<std::string> weights;
  std::vector<std::string> others;
  bool has_config = false;
  std::set<std::string_view> seen;
  for (const auto& name : siblings) {
    if (!is_wanted_file(name) || !seen.insert(name).second) continue;
    if (name == kConfigFile) {
      has_config = true;
    } else if (name == kSafetensorsIndexFile) {
      index.push_back(name);
    } else if (is_safetensors(name)) {
      if (index_shards == nullptr || keep_shards.count(name) != 0) weights.push_back(name);
    } else {
      others.push_back(name);
    }
  }
  std::sort(weights.begin(), weights.end());
  std::sort(others.begin(), others.end());
  std::vector<std::string> out = std::move(index);
  out.insert(out.end(), weights.begin(), weights.end());
  out.insert(out.end(), others.begin(), others.end());
  if (has_config) out.emplace_back(kConfigFile);
  return out;
}

}  // namespace turbine::hub
