#include "encoder/pooling.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace turbine::encoder {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Result<json> read_json(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return not_found(p.string() + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) return invalid_argument(p.string() + ": invalid JSON");
  return j;
}

bool contains(const std::string& s, const char* part) {
  return s.find(part) != std::string::npos;
}

Result<Output> pooling_mode(const json& j, const std::string& where) {
  if (auto m = j.find("pooling_mode"); m != j.end() && m->is_string()) {
    const std::string mode = m->get<std::string>();
    if (mode == "cls") return Output::kCls;
    if (mode == "mean") return Output::kMean;
    if (mode == "lasttoken") return Output::kLastToken;
    if (mode == "max") return Output::kMax;
    return unimplemented(where + ": pooling_mode '" + mode + "' is not supported", "pooling_mode");
  }
  const auto flag = [&](const char* key) { return j.value(key, false); };
  if (flag("pooling_mode_mean_sqrt_len_tokens") || flag("pooling_mode_weightedmean_tokens"))
    return unimplemented(where + ": sqrt-length and weighted-mean pooling are not supported",
                         "pooling_mode");
  int n = 0;
  Output out = Output::kCls;
  if (flag("pooling_mode_cls_token")) ++n, out = Output::kCls;
  if (flag("pooling_mode_mean_tokens")) ++n, out = Output::kMean;
  if (flag("pooling_mode_max_tokens")) ++n, out = Output::kMax;
  if (flag("pooling_mode_lasttoken")) ++n, out = Output::kLastToken;
  if (n != 1)
    return unimplemented(where + ": exactly one pooling mode must be set", "pooling_mode");
  return out;
}

}  // namespace

Result<PoolingConfig> read_pooling_config(const fs::path& dir, const EncoderConfig& config) {
  PoolingConfig p;
  p.mode = config.arch == EncoderArch::kDecoder ? Output::kLastToken : Output::kCls;
  p.normalize = true;
  std::error_code ec;
  if (!fs::exists(dir / "modules.json", ec)) return p;
  TURBINE_ASSIGN_OR_RETURN(json modules, read_json(dir / "modules.json"));
  if (!modules.is_array()) return invalid_argument("modules.json: expected a list", "modules");
  p.from_sentence_transformers = true;
  p.normalize = false;
  bool pooled = false;
  for (const json& m : modules) {
    if (!m.is_object()) return invalid_argument("modules.json: expected objects", "modules");
    const std::string type = m.value("type", std::string());
    const std::string path = m.value("path", std::string());
    if (path.find("..") != std::string::npos)
      return invalid_argument("modules.json: bad module path '" + path + "'", "modules");
    if (contains(type, "Transformer")) continue;
    if (contains(type, "Pooling")) {
      TURBINE_ASSIGN_OR_RETURN(json pc, read_json(dir / path / "config.json"));
      TURBINE_ASSIGN_OR_RETURN(p.mode, pooling_mode(pc, path + "/config.json"));
      if (!pc.value("include_prompt", true))
        return unimplemented(path + "/config.json: include_prompt false is not supported",
                             "include_prompt");
      pooled = true;
    } else if (contains(type, "Normalize")) {
      p.normalize = true;
    } else {
      return unimplemented(
          "modules.json: sentence-transformers module '" + type + "' is not supported", "modules");
    }
  }
  if (!pooled) return unimplemented("modules.json: no Pooling module", "modules");
  if (fs::exists(dir / "sentence_bert_config.json", ec)) {
    TURBINE_ASSIGN_OR_RETURN(json sb, read_json(dir / "sentence_bert_config.json"));
    if (auto m = sb.find("max_seq_length"); m != sb.end() && m->is_number_integer())
      p.max_seq_length = std::max(0, m->get<int>());
    if (sb.value("do_lower_case", false))
      return unimplemented("sentence_bert_config.json: do_lower_case is not supported",
                           "do_lower_case");
  }
  return p;
}

}  // namespace turbine::encoder
