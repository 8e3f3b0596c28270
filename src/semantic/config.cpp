#include "semantic/config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "common/strings.h"
#include "semantic/keyword.h"
#include "semantic/pii.h"

namespace turbine::semantic {

bool PiiPolicy::allows(std::string_view bare_type) const {
  auto has = [&](const std::vector<std::string>& list) {
    return std::find(list.begin(), list.end(), bare_type) != list.end();
  };
  return allow_by_default ? !has(denied_types) : has(allowed_types);
}

const char* signal_type_name(SignalType type) {
  switch (type) {
    case SignalType::kKeyword: return "keyword";
    case SignalType::kEmbedding: return "embedding";
    case SignalType::kDomain: return "domain";
    case SignalType::kLength: return "length";
  }
  return "?";
}

const ModelSpec* SemanticConfig::find_model(std::string_view name) const {
  for (const ModelSpec& m : models) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

bool SemanticConfig::is_virtual_model(std::string_view name) const {
  return std::find(virtual_models.begin(), virtual_models.end(), name) != virtual_models.end();
}

namespace {

// yaml-cpp throws; everything below runs inside parse_semantic_config's try block and reports
// through Status with the key path, so no exception leaves this file.
std::string join_path(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}
std::string index_path(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

Status bad(const std::string& path, const std::string& what) {
  return invalid_argument("semantic config: " + path + ": " + what, path);
}

Status check_map(const YAML::Node& node, const std::string& path,
                 std::initializer_list<std::string_view> allowed) {
  if (!node.IsMap()) return bad(path.empty() ? "(top level)" : path, "must be a mapping");
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return bad(join_path(path, key), "unknown key");
    }
  }
  return Status::ok();
}

template <typename T>
Status read_scalar(const YAML::Node& map, std::string_view key, const std::string& path, T& out,
                   const char* type_name) {
  YAML::Node n = map[std::string(key)];
  if (!n) return Status::ok();
  std::string p = join_path(path, key);
  if (!n.IsScalar()) return bad(p, std::string("must be ") + type_name);
  try {
    out = n.as<T>();
  } catch (const YAML::Exception&) {
    return bad(p, std::string("must be ") + type_name);
  }
  return Status::ok();
}

Status read_bool(const YAML::Node& m, std::string_view k, const std::string& p, bool& out) {
  return read_scalar(m, k, p, out, "true or false");
}
Status read_string(const YAML::Node& m, std::string_view k, const std::string& p,
                   std::string& out) {
  return read_scalar(m, k, p, out, "a string");
}
Status read_int(const YAML::Node& m, std::string_view k, const std::string& p, int64_t& out,
                int64_t lo, int64_t hi) {
  TURBINE_RETURN_IF_ERROR(read_scalar(m, k, p, out, "an integer"));
  if (m[std::string(k)] && (out < lo || out > hi)) {
    return bad(join_path(p, k), "out of range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                    "]: " + std::to_string(out));
  }
  return Status::ok();
}
// Probabilities and similarities: [0, 1].
Status read_unit(const YAML::Node& m, std::string_view k, const std::string& p, float& out) {
  double v = out;
  TURBINE_RETURN_IF_ERROR(read_scalar(m, k, p, v, "a number"));
  if (m[std::string(k)] && !(v >= 0.0 && v <= 1.0)) {
    std::ostringstream s;
    s << "out of range [0, 1]: " << v;
    return bad(join_path(p, k), s.str());
  }
  out = static_cast<float>(v);
  return Status::ok();
}
Status read_strings(const YAML::Node& m, std::string_view k, const std::string& p,
                    std::vector<std::string>& out) {
  YAML::Node n = m[std::string(k)];
  if (!n) return Status::ok();
  std::string path = join_path(p, k);
  if (!n.IsSequence()) return bad(path, "must be a list of strings");
  out.clear();
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar()) return bad(index_path(path, i), "must be a string");
    out.push_back(n[i].as<std::string>());
  }
  return Status::ok();
}
Status read_name(const YAML::Node& m, const std::string& p, std::string& out) {
  TURBINE_RETURN_IF_ERROR(read_string(m, "name", p, out));
  if (out.empty()) return bad(join_path(p, "name"), "required, non-empty");
  return Status::ok();
}

template <typename E>
Status read_enum(const YAML::Node& m, std::string_view k, const std::string& p, E& out,
                 std::initializer_list<std::pair<std::string_view, E>> values) {
  std::string s;
  if (!m[std::string(k)]) return Status::ok();
  TURBINE_RETURN_IF_ERROR(read_string(m, k, p, s));
  std::string names;
  for (const auto& [name, value] : values) {
    if (iequals(s, name)) {
      out = value;
      return Status::ok();
    }
    names += names.empty() ? "" : ", ";
    names += name;
  }
  return bad(join_path(p, k), "'" + s + "' is not one of: " + names);
}

Status parse_policy(const YAML::Node& n, const std::string& p, PiiPolicy& out) {
  TURBINE_RETURN_IF_ERROR(check_map(n, p, {"allow_by_default", "allowed_types", "denied_types"}));
  TURBINE_RETURN_IF_ERROR(read_bool(n, "allow_by_default", p, out.allow_by_default));
  TURBINE_RETURN_IF_ERROR(read_strings(n, "allowed_types", p, out.allowed_types));
  TURBINE_RETURN_IF_ERROR(read_strings(n, "denied_types", p, out.denied_types));
  for (auto* list : {&out.allowed_types, &out.denied_types}) {
    for (std::string& t : *list) t = std::string(strip_bio_prefix(t));
  }
  return Status::ok();
}

template <typename Fn>
Status for_each_item(const YAML::Node& m, std::string_view k, const std::string& p, Fn&& fn) {
  YAML::Node n = m[std::string(k)];
  if (!n) return Status::ok();
  std::string path = join_path(p, k);
  if (!n.IsSequence()) return bad(path, "must be a list");
  for (size_t i = 0; i < n.size(); ++i) TURBINE_RETURN_IF_ERROR(fn(n[i], index_path(path, i)));
  return Status::ok();
}

Status parse_rule(const YAML::Node& n, const std::string& p, Rule& out, int depth) {
  if (depth > 16) return bad(p, "rules nested deeper than 16 levels");
  if (!n.IsMap()) return bad(p, "must be a mapping");
  if (n["type"] || n["name"]) {
    TURBINE_RETURN_IF_ERROR(check_map(n, p, {"type", "name"}));
    out.leaf = true;
    TURBINE_RETURN_IF_ERROR(read_enum(n, "type", p, out.type,
                                      {{"keyword", SignalType::kKeyword},
                                       {"embedding", SignalType::kEmbedding},
                                       {"domain", SignalType::kDomain},
                                       {"length", SignalType::kLength}}));
    if (!n["type"]) return bad(join_path(p, "type"), "required");
    return read_name(n, p, out.name);
  }
  TURBINE_RETURN_IF_ERROR(check_map(n, p, {"operator", "conditions"}));
  TURBINE_RETURN_IF_ERROR(read_enum(
      n, "operator", p, out.op,
      {{"AND", RuleOperator::kAnd}, {"OR", RuleOperator::kOr}, {"NOT", RuleOperator::kNot}}));
  if (!n["conditions"] || !n["conditions"].IsSequence() || n["conditions"].size() == 0) {
    return bad(join_path(p, "conditions"), "required, a non-empty list");
  }
  if (out.op == RuleOperator::kNot && n["conditions"].size() != 1) {
    return bad(join_path(p, "conditions"), "NOT takes exactly one condition");
  }
  return for_each_item(n, "conditions", p, [&](const YAML::Node& c, const std::string& cp) {
    Rule child;
    TURBINE_RETURN_IF_ERROR(parse_rule(c, cp, child, depth + 1));
    out.children.push_back(std::move(child));
    return Status::ok();
  });
}

Status parse_decision(const YAML::Node& n, const std::string& p, Decision& d, bool is_default) {
  TURBINE_RETURN_IF_ERROR(
      check_map(n, p,
                {"name", "category", "priority", "rules", "models", "use_reasoning",
                 "reasoning_effort", "system_prompt", "system_prompt_mode", "cache"}));
  if (is_default) {
    d.name = "default";
    TURBINE_RETURN_IF_ERROR(read_string(n, "name", p, d.name));
  } else {
    TURBINE_RETURN_IF_ERROR(read_name(n, p, d.name));
  }
  TURBINE_RETURN_IF_ERROR(read_string(n, "category", p, d.category));
  TURBINE_RETURN_IF_ERROR(read_int(n, "priority", p, d.priority, INT32_MIN, INT32_MAX));
  if (n["rules"]) {
    if (is_default) return bad(join_path(p, "rules"), "default_decision takes no rules");
    Rule r;
    TURBINE_RETURN_IF_ERROR(parse_rule(n["rules"], join_path(p, "rules"), r, 0));
    d.rules = std::move(r);
  } else if (!is_default) {
    return bad(join_path(p, "rules"), "required");
  }
  TURBINE_RETURN_IF_ERROR(read_strings(n, "models", p, d.models));
  if (d.models.empty()) return bad(join_path(p, "models"), "required, a non-empty list");
  if (n["use_reasoning"]) {
    bool b = false;
    TURBINE_RETURN_IF_ERROR(read_bool(n, "use_reasoning", p, b));
    d.use_reasoning = b;
  }
  TURBINE_RETURN_IF_ERROR(read_string(n, "reasoning_effort", p, d.reasoning_effort));
  TURBINE_RETURN_IF_ERROR(read_string(n, "system_prompt", p, d.system_prompt));
  TURBINE_RETURN_IF_ERROR(
      read_enum(n, "system_prompt_mode", p, d.system_prompt_mode,
                {{"insert", SystemPromptMode::kInsert}, {"replace", SystemPromptMode::kReplace}}));
  if (YAML::Node c = n["cache"]) {
    std::string cp = join_path(p, "cache");
    TURBINE_RETURN_IF_ERROR(check_map(c, cp, {"enabled", "similarity_threshold"}));
    if (c["enabled"]) {
      bool b = false;
      TURBINE_RETURN_IF_ERROR(read_bool(c, "enabled", cp, b));
      d.cache.enabled = b;
    }
    if (c["similarity_threshold"]) {
      float t = 0;
      TURBINE_RETURN_IF_ERROR(read_unit(c, "similarity_threshold", cp, t));
      d.cache.similarity_threshold = t;
    }
  }
  return Status::ok();
}

Status parse_signals(const YAML::Node& n, const std::string& p, SemanticConfig& c) {
  TURBINE_RETURN_IF_ERROR(check_map(n, p, {"keywords", "embeddings", "domains", "length"}));
  TURBINE_RETURN_IF_ERROR(
      for_each_item(n, "keywords", p, [&](const YAML::Node& s, const std::string& sp) {
        KeywordSignal k;
        TURBINE_RETURN_IF_ERROR(
            check_map(s, sp, {"name", "operator", "case_sensitive", "keywords", "regex"}));
        TURBINE_RETURN_IF_ERROR(read_name(s, sp, k.name));
        TURBINE_RETURN_IF_ERROR(read_enum(s, "operator", sp, k.op,
                                          {{"OR", KeywordOperator::kOr},
                                           {"AND", KeywordOperator::kAnd},
                                           {"NOR", KeywordOperator::kNor}}));
        TURBINE_RETURN_IF_ERROR(read_bool(s, "case_sensitive", sp, k.case_sensitive));
        TURBINE_RETURN_IF_ERROR(read_strings(s, "keywords", sp, k.keywords));
        TURBINE_RETURN_IF_ERROR(read_strings(s, "regex", sp, k.regex));
        if (k.keywords.empty() && k.regex.empty()) {
          return bad(join_path(sp, "keywords"), "a keyword signal needs keywords or regex");
        }
        for (size_t i = 0; i < k.regex.size(); ++i) {
          std::string err = regex_error(k.regex[i]);
          if (!err.empty()) return bad(index_path(join_path(sp, "regex"), i), "bad regex: " + err);
        }
        c.keyword_signals.push_back(std::move(k));
        return Status::ok();
      }));
  TURBINE_RETURN_IF_ERROR(
      for_each_item(n, "embeddings", p, [&](const YAML::Node& s, const std::string& sp) {
        EmbeddingSignal e;
        TURBINE_RETURN_IF_ERROR(
            check_map(s, sp, {"name", "threshold", "aggregation", "candidates"}));
        TURBINE_RETURN_IF_ERROR(read_name(s, sp, e.name));
        TURBINE_RETURN_IF_ERROR(read_unit(s, "threshold", sp, e.threshold));
        TURBINE_RETURN_IF_ERROR(read_enum(s, "aggregation", sp, e.aggregation,
                                          {{"max", Aggregation::kMax},
                                           {"mean", Aggregation::kMean},
                                           {"any", Aggregation::kAny}}));
        TURBINE_RETURN_IF_ERROR(read_strings(s, "candidates", sp, e.candidates));
        if (e.candidates.empty()) return bad(join_path(sp, "candidates"), "required, non-empty");
        c.embedding_signals.push_back(std::move(e));
        return Status::ok();
      }));
  TURBINE_RETURN_IF_ERROR(
      for_each_item(n, "domains", p, [&](const YAML::Node& s, const std::string& sp) {
        DomainSignal d;
        TURBINE_RETURN_IF_ERROR(check_map(s, sp, {"name", "labels", "threshold"}));
        TURBINE_RETURN_IF_ERROR(read_name(s, sp, d.name));
        TURBINE_RETURN_IF_ERROR(read_strings(s, "labels", sp, d.labels));
        if (d.labels.empty()) d.labels.push_back(d.name);
        TURBINE_RETURN_IF_ERROR(read_unit(s, "threshold", sp, d.threshold));
        c.domain_signals.push_back(std::move(d));
        return Status::ok();
      }));
  return for_each_item(n, "length", p, [&](const YAML::Node& s, const std::string& sp) {
    LengthSignal l;
    TURBINE_RETURN_IF_ERROR(check_map(s, sp, {"name", "min_chars", "max_chars"}));
    TURBINE_RETURN_IF_ERROR(read_name(s, sp, l.name));
    TURBINE_RETURN_IF_ERROR(read_int(s, "min_chars", sp, l.min_chars, 0, INT64_MAX));
    TURBINE_RETURN_IF_ERROR(read_int(s, "max_chars", sp, l.max_chars, 0, INT64_MAX));
    if (l.max_chars != 0 && l.max_chars < l.min_chars) {
      return bad(join_path(sp, "max_chars"), "smaller than min_chars");
    }
    c.length_signals.push_back(std::move(l));
    return Status::ok();
  });
}

Status parse_pii(const YAML::Node& n, const std::string& p, PiiConfig& c) {
  TURBINE_RETURN_IF_ERROR(check_map(
      n, p, {"enabled", "action", "types", "include_history", "model", "default_policy"}));
  TURBINE_RETURN_IF_ERROR(read_bool(n, "enabled", p, c.enabled));
  TURBINE_RETURN_IF_ERROR(read_enum(
      n, "action", p, c.action, {{"block", PiiAction::kBlock}, {"redact", PiiAction::kRedact}}));
  TURBINE_RETURN_IF_ERROR(read_strings(n, "types", p, c.types));
  for (size_t i = 0; i < c.types.size(); ++i) {
    c.types[i] = std::string(strip_bio_prefix(c.types[i]));
    if (!is_builtin_pii_type(c.types[i])) {
      return bad(index_path(join_path(p, "types"), i),
                 "'" + c.types[i] + "' has no built-in detector (" + builtin_pii_type_list() + ")");
    }
  }
  TURBINE_RETURN_IF_ERROR(read_bool(n, "include_history", p, c.include_history));
  if (YAML::Node m = n["model"]) {
    std::string mp = join_path(p, "model");
    TURBINE_RETURN_IF_ERROR(check_map(m, mp, {"enabled", "threshold"}));
    c.model_enabled = true;
    TURBINE_RETURN_IF_ERROR(read_bool(m, "enabled", mp, c.model_enabled));
    TURBINE_RETURN_IF_ERROR(read_unit(m, "threshold", mp, c.model_threshold));
  }
  if (YAML::Node m = n["default_policy"]) {
    TURBINE_RETURN_IF_ERROR(parse_policy(m, join_path(p, "default_policy"), c.default_policy));
  }
  return Status::ok();
}

Status parse_jailbreak(const YAML::Node& n, const std::string& p, JailbreakConfig& c) {
  TURBINE_RETURN_IF_ERROR(
      check_map(n, p, {"enabled", "method", "threshold", "include_history", "classifier_labels"}));
  TURBINE_RETURN_IF_ERROR(read_bool(n, "enabled", p, c.enabled));
  TURBINE_RETURN_IF_ERROR(read_enum(n, "method", p, c.method,
                                    {{"heuristic", JailbreakMethod::kHeuristic},
                                     {"classifier", JailbreakMethod::kClassifier},
                                     {"both", JailbreakMethod::kBoth}}));
  TURBINE_RETURN_IF_ERROR(read_unit(n, "threshold", p, c.threshold));
  TURBINE_RETURN_IF_ERROR(read_bool(n, "include_history", p, c.include_history));
  return read_strings(n, "classifier_labels", p, c.classifier_labels);
}

Status parse_cache(const YAML::Node& n, const std::string& p, CacheConfig& c) {
  TURBINE_RETURN_IF_ERROR(
      check_map(n, p,
                {"enabled", "semantic", "similarity_threshold", "ttl_seconds", "max_entries",
                 "literal_guard", "exact_search_max_entries", "hnsw"}));
  TURBINE_RETURN_IF_ERROR(read_bool(n, "enabled", p, c.enabled));
  TURBINE_RETURN_IF_ERROR(read_bool(n, "semantic", p, c.semantic));
  TURBINE_RETURN_IF_ERROR(read_unit(n, "similarity_threshold", p, c.similarity_threshold));
  TURBINE_RETURN_IF_ERROR(read_int(n, "ttl_seconds", p, c.ttl_seconds, 1, 365LL * 86400));
  TURBINE_RETURN_IF_ERROR(read_int(n, "max_entries", p, c.max_entries, 1, 100'000'000));
  TURBINE_RETURN_IF_ERROR(read_bool(n, "literal_guard", p, c.literal_guard));
  TURBINE_RETURN_IF_ERROR(
      read_int(n, "exact_search_max_entries", p, c.exact_search_max_entries, 0, 100'000'000));
  if (YAML::Node h = n["hnsw"]) {
    std::string hp = join_path(p, "hnsw");
    TURBINE_RETURN_IF_ERROR(check_map(h, hp, {"m", "ef_construction", "ef_search"}));
    TURBINE_RETURN_IF_ERROR(read_int(h, "m", hp, c.hnsw_m, 2, 128));
    TURBINE_RETURN_IF_ERROR(read_int(h, "ef_construction", hp, c.hnsw_ef_construction, 1, 4096));
    TURBINE_RETURN_IF_ERROR(read_int(h, "ef_search", hp, c.hnsw_ef_search, 1, 4096));
  }
  return Status::ok();
}

// Cross-references: signal names exist and are unique, decision models are declared, families
// exist.
Status check_rule_refs(const Rule& r, const std::string& p, const SemanticConfig& c) {
  if (!r.leaf) {
    for (size_t i = 0; i < r.children.size(); ++i) {
      TURBINE_RETURN_IF_ERROR(
          check_rule_refs(r.children[i], index_path(join_path(p, "conditions"), i), c));
    }
    return Status::ok();
  }
  auto has = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& s) { return s.name == r.name; });
  };
  bool found = false;
  switch (r.type) {
    case SignalType::kKeyword: found = has(c.keyword_signals); break;
    case SignalType::kEmbedding: found = has(c.embedding_signals); break;
    case SignalType::kDomain: found = has(c.domain_signals); break;
    case SignalType::kLength: found = has(c.length_signals); break;
  }
  if (!found) {
    return bad(join_path(p, "name"),
               std::string("no ") + signal_type_name(r.type) + " signal named '" + r.name + "'");
  }
  return Status::ok();
}

Status cross_check(SemanticConfig& c) {
  std::set<std::string> names;
  for (size_t i = 0; i < c.models.size(); ++i) {
    std::string p = index_path("models", i);
    if (!names.insert(c.models[i].name).second) return bad(join_path(p, "name"), "duplicate");
    if (c.is_virtual_model(c.models[i].name)) {
      return bad(join_path(p, "name"), "'" + c.models[i].name + "' is a virtual model name");
    }
    const std::string& fam = c.models[i].reasoning_family;
    if (!fam.empty() && !c.reasoning_families.count(fam)) {
      return bad(join_path(p, "reasoning_family"), "no reasoning family named '" + fam + "'");
    }
  }
  auto unique = [&](const auto& list, const char* key) -> Status {
    std::set<std::string> seen;
    for (size_t i = 0; i < list.size(); ++i) {
      if (!seen.insert(list[i].name).second) {
        return bad(join_path(index_path(key, i), "name"), "duplicate signal name");
      }
    }
    return Status::ok();
  };
  TURBINE_RETURN_IF_ERROR(unique(c.keyword_signals, "signals.keywords"));
  TURBINE_RETURN_IF_ERROR(unique(c.embedding_signals, "signals.embeddings"));
  TURBINE_RETURN_IF_ERROR(unique(c.domain_signals, "signals.domains"));
  TURBINE_RETURN_IF_ERROR(unique(c.length_signals, "signals.length"));
  std::set<std::string> decision_names;
  auto check_decision = [&](const Decision& d, const std::string& p) -> Status {
    if (!decision_names.insert(d.name).second) return bad(join_path(p, "name"), "duplicate");
    for (size_t m = 0; m < d.models.size(); ++m) {
      if (!c.find_model(d.models[m])) {
        return bad(index_path(join_path(p, "models"), m),
                   "model '" + d.models[m] + "' is not declared under models");
      }
    }
    if (d.rules) TURBINE_RETURN_IF_ERROR(check_rule_refs(*d.rules, join_path(p, "rules"), c));
    return Status::ok();
  };
  for (size_t i = 0; i < c.decisions.size(); ++i) {
    TURBINE_RETURN_IF_ERROR(check_decision(c.decisions[i], index_path("decisions", i)));
  }
  if (c.default_decision) {
    TURBINE_RETURN_IF_ERROR(check_decision(*c.default_decision, "default_decision"));
  } else if (!c.decisions.empty() && !c.virtual_models.empty()) {
    return bad("default_decision", "required when decisions and virtual_models are configured");
  }
  std::stable_sort(c.decisions.begin(), c.decisions.end(),
                   [](const Decision& a, const Decision& b) { return a.priority > b.priority; });
  return Status::ok();
}

// A model key: a folder (string) or {model_id, source: local|remote}, as the semantic router
// names its classifier models (`model_id`).
Status parse_model_ref(const YAML::Node& n, std::string_view key, const std::string& p,
                       EncoderModelRef& out) {
  YAML::Node m = n[std::string(key)];
  if (!m) return Status::ok();
  if (m.IsScalar()) return read_string(n, key, p, out.model);
  const std::string path = join_path(p, key);
  if (!m.IsMap()) return bad(path, "must be a folder or a mapping {model_id, source}");
  TURBINE_RETURN_IF_ERROR(check_map(m, path, {"model_id", "source"}));
  TURBINE_RETURN_IF_ERROR(read_string(m, "model_id", path, out.model));
  if (out.model.empty()) return bad(join_path(path, "model_id"), "required, non-empty");
  return read_enum(m, "source", path, out.remote, {{"local", false}, {"remote", true}});
}

Status parse_encoder_models(const YAML::Node& n, const std::string& p, EncoderModelsConfig& e) {
  TURBINE_RETURN_IF_ERROR(check_map(
      n, p,
      {"embedding", "domain_classifier", "jailbreak_classifier", "pii_classifier", "threads",
       "max_tokens", "max_parallel_calls", "timeout_ms", "remote_wait_seconds"}));
  TURBINE_RETURN_IF_ERROR(parse_model_ref(n, "embedding", p, e.embedding));
  TURBINE_RETURN_IF_ERROR(parse_model_ref(n, "domain_classifier", p, e.domain_classifier));
  TURBINE_RETURN_IF_ERROR(parse_model_ref(n, "jailbreak_classifier", p, e.jailbreak_classifier));
  TURBINE_RETURN_IF_ERROR(parse_model_ref(n, "pii_classifier", p, e.pii_classifier));
  TURBINE_RETURN_IF_ERROR(read_int(n, "threads", p, e.threads, 0, 1024));
  TURBINE_RETURN_IF_ERROR(read_int(n, "max_tokens", p, e.max_tokens, 8, 1 << 20));
  TURBINE_RETURN_IF_ERROR(read_int(n, "max_parallel_calls", p, e.max_parallel_calls, 1, 64));
  TURBINE_RETURN_IF_ERROR(read_int(n, "timeout_ms", p, e.timeout_ms, 1, 600000));
  TURBINE_RETURN_IF_ERROR(
      read_int(n, "remote_wait_seconds", p, e.remote_wait_seconds, 1, 24 * 3600));
  return Status::ok();
}

Status parse_root(const YAML::Node& root, SemanticConfig& c) {
  TURBINE_RETURN_IF_ERROR(
      check_map(root, "",
                {"virtual_models", "list_real_models", "tenant_header", "models",
                 "reasoning_families", "default_reasoning_effort", "signals", "decisions",
                 "default_decision", "pii", "jailbreak", "semantic_cache", "encoder_models"}));
  TURBINE_RETURN_IF_ERROR(read_strings(root, "virtual_models", "", c.virtual_models));
  TURBINE_RETURN_IF_ERROR(read_bool(root, "list_real_models", "", c.list_real_models));
  TURBINE_RETURN_IF_ERROR(read_string(root, "tenant_header", "", c.tenant_header));
  for (char& ch : c.tenant_header) ch = static_cast<char>(std::tolower(ch));
  TURBINE_RETURN_IF_ERROR(
      read_string(root, "default_reasoning_effort", "", c.default_reasoning_effort));
  c.reasoning_families = {
      {"qwen3", {ReasoningType::kChatTemplateKwargs, "enable_thinking"}},
      {"deepseek", {ReasoningType::kChatTemplateKwargs, "thinking"}},
      {"gpt-oss", {ReasoningType::kReasoningEffort, "reasoning_effort"}},
  };
  if (YAML::Node f = root["reasoning_families"]) {
    if (!f.IsMap()) return bad("reasoning_families", "must be a mapping");
    for (const auto& kv : f) {
      std::string name = kv.first.as<std::string>();
      std::string p = join_path("reasoning_families", name);
      ReasoningFamily fam;
      TURBINE_RETURN_IF_ERROR(check_map(kv.second, p, {"type", "parameter"}));
      TURBINE_RETURN_IF_ERROR(
          read_enum(kv.second, "type", p, fam.type,
                    {{"chat_template_kwargs", ReasoningType::kChatTemplateKwargs},
                     {"reasoning_effort", ReasoningType::kReasoningEffort}}));
      TURBINE_RETURN_IF_ERROR(read_string(kv.second, "parameter", p, fam.parameter));
      if (fam.parameter.empty()) return bad(join_path(p, "parameter"), "required");
      c.reasoning_families[name] = fam;
    }
  }
  TURBINE_RETURN_IF_ERROR(
      for_each_item(root, "models", "", [&](const YAML::Node& n, const std::string& p) {
        ModelSpec m;
        TURBINE_RETURN_IF_ERROR(check_map(n, p, {"name", "reasoning_family", "pii_policy"}));
        TURBINE_RETURN_IF_ERROR(read_name(n, p, m.name));
        TURBINE_RETURN_IF_ERROR(read_string(n, "reasoning_family", p, m.reasoning_family));
        if (YAML::Node pol = n["pii_policy"]) {
          PiiPolicy policy;
          TURBINE_RETURN_IF_ERROR(parse_policy(pol, join_path(p, "pii_policy"), policy));
          m.pii_policy = policy;
        }
        c.models.push_back(std::move(m));
        return Status::ok();
      }));
  if (YAML::Node s = root["signals"]) TURBINE_RETURN_IF_ERROR(parse_signals(s, "signals", c));
  TURBINE_RETURN_IF_ERROR(
      for_each_item(root, "decisions", "", [&](const YAML::Node& n, const std::string& p) {
        Decision d;
        TURBINE_RETURN_IF_ERROR(parse_decision(n, p, d, false));
        c.decisions.push_back(std::move(d));
        return Status::ok();
      }));
  if (YAML::Node n = root["default_decision"]) {
    Decision d;
    TURBINE_RETURN_IF_ERROR(parse_decision(n, "default_decision", d, true));
    c.default_decision = std::move(d);
  }
  if (YAML::Node n = root["pii"]) TURBINE_RETURN_IF_ERROR(parse_pii(n, "pii", c.pii));
  if (YAML::Node n = root["jailbreak"]) {
    TURBINE_RETURN_IF_ERROR(parse_jailbreak(n, "jailbreak", c.jailbreak));
  }
  if (YAML::Node n = root["semantic_cache"]) {
    TURBINE_RETURN_IF_ERROR(parse_cache(n, "semantic_cache", c.cache));
  }
  if (YAML::Node n = root["encoder_models"]) {
    TURBINE_RETURN_IF_ERROR(parse_encoder_models(n, "encoder_models", c.encoder_models));
  }
  return cross_check(c);
}

}  // namespace

Result<SemanticConfig> parse_semantic_config(std::string_view yaml_text) {
  SemanticConfig c;
  try {
    YAML::Node root = YAML::Load(std::string(yaml_text));
    if (root.IsNull()) return c;  // an empty file: every default
    Status st = parse_root(root, c);
    if (!st.is_ok()) return st;
  } catch (const YAML::Exception& e) {
    return invalid_argument(std::string("semantic config: YAML: ") + e.what(),
                            "line " + std::to_string(e.mark.line + 1));
  }
  return c;
}

Result<SemanticConfig> load_semantic_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return invalid_argument("semantic config: cannot read " + path, path);
  std::ostringstream text;
  text << in.rdbuf();
  TURBINE_ASSIGN_OR_RETURN(SemanticConfig c, parse_semantic_config(text.str()));
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  EncoderModelsConfig& e = c.encoder_models;
  for (EncoderModelRef* ref :
       {&e.embedding, &e.domain_classifier, &e.jailbreak_classifier, &e.pii_classifier}) {
    // Remote names are served names, not paths.
    if (!ref->empty() && !ref->remote && std::filesystem::path(ref->model).is_relative()) {
      ref->model = (dir / ref->model).lexically_normal().string();
    }
  }
  return c;
}

}  // namespace turbine::semantic
