#include "planner/config.h"

#include <cmath>
#include <fstream>
#include <initializer_list>
#include <sstream>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace turbine::planner {
namespace {

namespace json = boost::json;

Status key_error(const std::string& key, const std::string& what) {
  return invalid_argument(fmt::format("planner config: {}: {}", key, what), key);
}

std::string join(const std::string& prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
}

// Reads the members of one JSON object, rejecting keys it was not asked for.
class ObjectReader {
 public:
  ObjectReader(const json::object& o, std::string path) : o_(o), path_(std::move(path)) {}

  Status only(std::initializer_list<std::string_view> allowed) const {
    for (const auto& kv : o_) {
      bool ok = false;
      for (std::string_view a : allowed) ok = ok || kv.key() == a;
      if (!ok) return key_error(join(path_, kv.key()), "unknown key");
    }
    return Status::ok();
  }
  const json::value* get(std::string_view key) const { return o_.if_contains(key); }
  std::string key(std::string_view k) const { return join(path_, k); }

  Status number(std::string_view k, double& out) const {
    const json::value* v = get(k);
    if (!v) return Status::ok();
    if (!v->is_number()) return key_error(key(k), "must be a number");
    out = v->to_number<double>();
    if (!std::isfinite(out)) return key_error(key(k), "must be finite");
    return Status::ok();
  }
  Status integer(std::string_view k, int& out) const {
    const json::value* v = get(k);
    if (!v) return Status::ok();
    if (!v->is_int64() && !v->is_uint64()) return key_error(key(k), "must be an integer");
    const int64_t i = v->is_int64() ? v->as_int64() : static_cast<int64_t>(v->as_uint64());
    if (i < -1'000'000'000 || i > 1'000'000'000) return key_error(key(k), "out of range");
    out = static_cast<int>(i);
    return Status::ok();
  }
  Status boolean(std::string_view k, bool& out) const {
    const json::value* v = get(k);
    if (!v) return Status::ok();
    if (!v->is_bool()) return key_error(key(k), "must be true or false");
    out = v->as_bool();
    return Status::ok();
  }
  Status string(std::string_view k, std::string& out) const {
    const json::value* v = get(k);
    if (!v) return Status::ok();
    if (!v->is_string()) return key_error(key(k), "must be a string");
    out = std::string(v->as_string());
    return Status::ok();
  }
  Result<const json::object*> object(std::string_view k) const {
    const json::value* v = get(k);
    if (!v) return static_cast<const json::object*>(nullptr);
    if (!v->is_object()) return key_error(key(k), "must be an object");
    return &v->as_object();
  }

 private:
  const json::object& o_;
  std::string path_;
};

Status read_pool(const json::object& o, const std::string& path, PoolConfig& p) {
  ObjectReader r(o, path);
  TURBINE_RETURN_IF_ERROR(
      r.only({"min", "max", "initial", "gpus_per_worker", "command", "deployment"}));
  TURBINE_RETURN_IF_ERROR(r.integer("min", p.min_replicas));
  TURBINE_RETURN_IF_ERROR(r.integer("max", p.max_replicas));
  TURBINE_RETURN_IF_ERROR(r.integer("initial", p.initial_replicas));
  TURBINE_RETURN_IF_ERROR(r.integer("gpus_per_worker", p.gpus_per_worker));
  TURBINE_RETURN_IF_ERROR(r.string("deployment", p.deployment));
  if (const json::value* c = r.get("command")) {
    if (!c->is_array()) return key_error(r.key("command"), "must be a list of strings");
    for (const json::value& a : c->as_array()) {
      if (!a.is_string()) return key_error(r.key("command"), "must be a list of strings");
      p.command.emplace_back(a.as_string());
    }
  }
  return Status::ok();
}

Status read_model(const json::object& o, const std::string& path, ModelConfig& m) {
  ObjectReader r(o, path);
  TURBINE_RETURN_IF_ERROR(r.only({"name", "pools", "max_gpus", "profile", "ttft_ms", "itl_ms"}));
  TURBINE_RETURN_IF_ERROR(r.string("name", m.name));
  TURBINE_RETURN_IF_ERROR(r.integer("max_gpus", m.max_gpus));
  TURBINE_RETURN_IF_ERROR(r.string("profile", m.profile_path));
  TURBINE_RETURN_IF_ERROR(r.number("ttft_ms", m.ttft_ms));
  TURBINE_RETURN_IF_ERROR(r.number("itl_ms", m.itl_ms));
  TURBINE_ASSIGN_OR_RETURN(const json::object* pools, r.object("pools"));
  if (!pools) return key_error(r.key("pools"), "required (at least \"decode\")");
  ObjectReader pr(*pools, r.key("pools"));
  TURBINE_RETURN_IF_ERROR(pr.only({"decode", "prefill"}));
  for (PoolRole role : {PoolRole::kDecode, PoolRole::kPrefill}) {
    TURBINE_ASSIGN_OR_RETURN(const json::object* po, pr.object(pool_role_name(role)));
    if (!po) continue;
    PoolConfig pool;
    pool.role = role;
    if (role == PoolRole::kPrefill) pool.min_replicas = 0;
    TURBINE_RETURN_IF_ERROR(read_pool(*po, pr.key(pool_role_name(role)), pool));
    m.pools.push_back(std::move(pool));
  }
  return Status::ok();
}

}  // namespace

const char* pool_role_name(PoolRole role) {
  return role == PoolRole::kPrefill ? "prefill" : "decode";
}
const char* planner_mode_name(PlannerMode mode) {
  return mode == PlannerMode::kSla ? "sla" : "load";
}
const char* connector_kind_name(ConnectorKind kind) {
  switch (kind) {
    case ConnectorKind::kLocal: return "local";
    case ConnectorKind::kKubernetes: return "kubernetes";
    case ConnectorKind::kVirtual: return "virtual";
  }
  return "?";
}

const PoolConfig* ModelConfig::pool(PoolRole role) const {
  for (const PoolConfig& p : pools) {
    if (p.role == role) return &p;
  }
  return nullptr;
}

Status PlannerConfig::validate() const {
  if (!(interval_s > 0)) return key_error("interval_s", "must be > 0");
  if (!(time_scale > 0)) return key_error("time_scale", "must be > 0");
  if (!(scrape_timeout_s > 0)) return key_error("scrape_timeout_s", "must be > 0");
  if (frontend_metrics_url.rfind("http://", 0) != 0 &&
      frontend_metrics_url.rfind("https://", 0) != 0)
    return key_error("frontend_metrics_url", "must be an http:// or https:// URL");
  if (max_gpus_total < 0) return key_error("max_gpus_total", "must be >= 0");
  if (status_port < -1 || status_port > 65535) return key_error("status_port", "must be -1..65535");
  if (ns.empty()) return key_error("namespace", "must not be empty");
  if (mode == PlannerMode::kLoad) {
    const LoadModeConfig& l = load;
    if (!(l.kv_scale_up > 0 && l.kv_scale_up <= 1))
      return key_error("load.kv_scale_up", "must be in (0, 1]");
    if (!(l.kv_scale_down >= 0 && l.kv_scale_down < l.kv_scale_up))
      return key_error("load.kv_scale_down", "must be >= 0 and below load.kv_scale_up");
    if (!(l.queue_scale_up > 0)) return key_error("load.queue_scale_up", "must be > 0");
    if (!(l.queue_scale_down >= 0 && l.queue_scale_down < l.queue_scale_up))
      return key_error("load.queue_scale_down", "must be >= 0 and below load.queue_scale_up");
    if (l.grace_intervals < 0) return key_error("load.grace_intervals", "must be >= 0");
  } else {
    if (Status st = sla.predictor.validate(); !st.is_ok())
      return key_error("sla." + st.field(), st.message());
    if (sla.scale_down_window < 1) return key_error("sla.scale_down_window", "must be >= 1");
    if (!(sla.scale_down_margin > 0 && sla.scale_down_margin <= 1))
      return key_error("sla.scale_down_margin", "must be in (0, 1]");
    if (sla.length_window < 1) return key_error("sla.length_window", "must be >= 1");
    if (!(sla.correction_min > 0 && sla.correction_min <= 1))
      return key_error("sla.correction_min", "must be in (0, 1]");
    if (!(sla.correction_max >= 1)) return key_error("sla.correction_max", "must be >= 1");
    if (!(sla.correction_weight > 0 && sla.correction_weight <= 1))
      return key_error("sla.correction_weight", "must be in (0, 1]");
    if (sla.correction_min_requests < 1)
      return key_error("sla.correction_min_requests", "must be >= 1");
    if (!(sla.correction_steady_sd >= 0))
      return key_error("sla.correction_steady_sd", "must be >= 0");
  }
  if (connector == ConnectorKind::kLocal) {
    if (!(local.ready_timeout_s > 0)) return key_error("local.ready_timeout_s", "must be > 0");
    if (!(local.drain_timeout_s > 0)) return key_error("local.drain_timeout_s", "must be > 0");
  }
  if (connector == ConnectorKind::kKubernetes && !(kubernetes.timeout_s > 0))
    return key_error("kubernetes.timeout_s", "must be > 0");
  if (models.empty()) return key_error("models", "at least one model is required");
  int total_min_gpus = 0;
  for (size_t i = 0; i < models.size(); ++i) {
    const ModelConfig& m = models[i];
    const std::string mk = fmt::format("models[{}]", i);
    if (m.name.empty()) return key_error(mk + ".name", "required");
    for (size_t j = 0; j < i; ++j) {
      if (models[j].name == m.name) return key_error(mk + ".name", "'" + m.name + "' given twice");
    }
    if (!m.pool(PoolRole::kDecode)) return key_error(mk + ".pools.decode", "required");
    if (m.max_gpus < 0) return key_error(mk + ".max_gpus", "must be >= 0");
    int model_min_gpus = 0;
    for (const PoolConfig& p : m.pools) {
      const std::string pk = mk + ".pools." + pool_role_name(p.role);
      const int lowest = p.role == PoolRole::kDecode ? 1 : 0;
      if (p.min_replicas < lowest)
        return key_error(pk + ".min", fmt::format("must be >= {}", lowest));
      if (p.max_replicas < p.min_replicas)
        return key_error(pk + ".max", fmt::format("must be >= min ({})", p.min_replicas));
      if (p.initial_replicas != -1 &&
          (p.initial_replicas < p.min_replicas || p.initial_replicas > p.max_replicas))
        return key_error(pk + ".initial", fmt::format("must be within min..max ({}..{})",
                                                      p.min_replicas, p.max_replicas));
      if (p.gpus_per_worker < 0) return key_error(pk + ".gpus_per_worker", "must be >= 0");
      if (connector == ConnectorKind::kLocal && p.command.empty())
        return key_error(pk + ".command", "required by the local connector");
      if (connector == ConnectorKind::kKubernetes && p.deployment.empty())
        return key_error(pk + ".deployment", "required by the kubernetes connector");
      model_min_gpus += p.min_replicas * p.gpus_per_worker;
    }
    if (m.max_gpus > 0 && model_min_gpus > m.max_gpus)
      return key_error(mk + ".max_gpus", fmt::format("{} is below the pools' minimum ({} GPUs)",
                                                     m.max_gpus, model_min_gpus));
    total_min_gpus += model_min_gpus;
    if (mode == PlannerMode::kSla) {
      if (m.profile_path.empty()) return key_error(mk + ".profile", "required in sla mode");
      if (!(m.ttft_ms > 0)) return key_error(mk + ".ttft_ms", "must be > 0");
      if (!(m.itl_ms > 0)) return key_error(mk + ".itl_ms", "must be > 0");
    }
  }
  if (max_gpus_total > 0 && total_min_gpus > max_gpus_total)
    return key_error("max_gpus_total", fmt::format("{} is below the pools' minimum ({} GPUs)",
                                                   max_gpus_total, total_min_gpus));
  return Status::ok();
}

Status PlannerConfig::load_profiles() {
  if (mode != PlannerMode::kSla) return Status::ok();
  for (size_t i = 0; i < models.size(); ++i) {
    auto p = load_profile(models[i].profile_path);
    if (!p) return key_error(fmt::format("models[{}].profile", i), p.status().message());
    if (std::fabs(p->time_scale - time_scale) > 1e-9 * time_scale) {
      // A profile of a mock at another speed would size the fleet wrongly.
      return key_error(fmt::format("models[{}].profile", i),
                       fmt::format("taken with time_scale {}, the planner runs with {}",
                                   p->time_scale, time_scale));
    }
    models[i].profile = std::move(*p);
  }
  return Status::ok();
}

Result<PlannerConfig> config_from_json(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return invalid_argument("planner config: not valid JSON: " + ec.message(), "config");
  if (!v.is_object()) return invalid_argument("planner config: must be a JSON object", "config");
  PlannerConfig c;
  ObjectReader r(v.as_object(), "");
  TURBINE_RETURN_IF_ERROR(
      r.only({"mode", "interval_s", "time_scale", "dry_run", "connector", "frontend_metrics_url",
              "scrape_timeout_s", "max_gpus_total", "status_host", "status_port", "decision_log",
              "namespace", "load", "sla", "local", "kubernetes", "models"}));
  std::string s;
  TURBINE_RETURN_IF_ERROR(r.string("mode", s));
  if (!s.empty()) {
    if (s == "load") {
      c.mode = PlannerMode::kLoad;
    } else if (s == "sla") {
      c.mode = PlannerMode::kSla;
    } else {
      return key_error("mode", "'" + s + "' is not load or sla");
    }
  }
  s.clear();
  TURBINE_RETURN_IF_ERROR(r.string("connector", s));
  if (!s.empty()) {
    if (s == "local") {
      c.connector = ConnectorKind::kLocal;
    } else if (s == "kubernetes") {
      c.connector = ConnectorKind::kKubernetes;
    } else if (s == "virtual") {
      c.connector = ConnectorKind::kVirtual;
    } else {
      return key_error("connector", "'" + s + "' is not local, kubernetes or virtual");
    }
  }
  TURBINE_RETURN_IF_ERROR(r.number("interval_s", c.interval_s));
  TURBINE_RETURN_IF_ERROR(r.number("time_scale", c.time_scale));
  TURBINE_RETURN_IF_ERROR(r.boolean("dry_run", c.dry_run));
  TURBINE_RETURN_IF_ERROR(r.string("frontend_metrics_url", c.frontend_metrics_url));
  TURBINE_RETURN_IF_ERROR(r.number("scrape_timeout_s", c.scrape_timeout_s));
  TURBINE_RETURN_IF_ERROR(r.integer("max_gpus_total", c.max_gpus_total));
  TURBINE_RETURN_IF_ERROR(r.string("status_host", c.status_host));
  TURBINE_RETURN_IF_ERROR(r.integer("status_port", c.status_port));
  TURBINE_RETURN_IF_ERROR(r.string("decision_log", c.decision_log));
  TURBINE_RETURN_IF_ERROR(r.string("namespace", c.ns));

  TURBINE_ASSIGN_OR_RETURN(const json::object* load, r.object("load"));
  if (load) {
    ObjectReader lr(*load, "load");
    TURBINE_RETURN_IF_ERROR(lr.only(
        {"kv_scale_up", "kv_scale_down", "queue_scale_up", "queue_scale_down", "grace_intervals"}));
    TURBINE_RETURN_IF_ERROR(lr.number("kv_scale_up", c.load.kv_scale_up));
    TURBINE_RETURN_IF_ERROR(lr.number("kv_scale_down", c.load.kv_scale_down));
    TURBINE_RETURN_IF_ERROR(lr.number("queue_scale_up", c.load.queue_scale_up));
    TURBINE_RETURN_IF_ERROR(lr.number("queue_scale_down", c.load.queue_scale_down));
    TURBINE_RETURN_IF_ERROR(lr.integer("grace_intervals", c.load.grace_intervals));
  }
  TURBINE_ASSIGN_OR_RETURN(const json::object* sla, r.object("sla"));
  if (sla) {
    ObjectReader sr(*sla, "sla");
    TURBINE_RETURN_IF_ERROR(sr.only(
        {"predictor", "window", "q_level", "q_trend", "r", "scale_down_window", "scale_down_margin",
         "scale_down_worst_case", "length_window", "correction_min", "correction_max",
         "correction_weight", "correction_min_requests", "correction_steady_sd"}));
    std::string pk;
    TURBINE_RETURN_IF_ERROR(sr.string("predictor", pk));
    if (!pk.empty()) {
      auto kind = parse_predictor_kind(pk);
      if (!kind) return key_error("sla.predictor", kind.status().message());
      c.sla.predictor.kind = *kind;
    }
    TURBINE_RETURN_IF_ERROR(sr.integer("window", c.sla.predictor.window));
    TURBINE_RETURN_IF_ERROR(sr.number("q_level", c.sla.predictor.q_level));
    TURBINE_RETURN_IF_ERROR(sr.number("q_trend", c.sla.predictor.q_trend));
    TURBINE_RETURN_IF_ERROR(sr.number("r", c.sla.predictor.r));
    TURBINE_RETURN_IF_ERROR(sr.integer("scale_down_window", c.sla.scale_down_window));
    TURBINE_RETURN_IF_ERROR(sr.number("scale_down_margin", c.sla.scale_down_margin));
    TURBINE_RETURN_IF_ERROR(sr.boolean("scale_down_worst_case", c.sla.scale_down_worst_case));
    TURBINE_RETURN_IF_ERROR(sr.integer("length_window", c.sla.length_window));
    TURBINE_RETURN_IF_ERROR(sr.number("correction_min", c.sla.correction_min));
    TURBINE_RETURN_IF_ERROR(sr.number("correction_max", c.sla.correction_max));
    TURBINE_RETURN_IF_ERROR(sr.number("correction_weight", c.sla.correction_weight));
    TURBINE_RETURN_IF_ERROR(sr.integer("correction_min_requests", c.sla.correction_min_requests));
    TURBINE_RETURN_IF_ERROR(sr.number("correction_steady_sd", c.sla.correction_steady_sd));
  }
  TURBINE_ASSIGN_OR_RETURN(const json::object* local, r.object("local"));
  if (local) {
    ObjectReader lr(*local, "local");
    TURBINE_RETURN_IF_ERROR(
        lr.only({"log_dir", "health_host", "ready_timeout_s", "drain_timeout_s"}));
    TURBINE_RETURN_IF_ERROR(lr.string("log_dir", c.local.log_dir));
    TURBINE_RETURN_IF_ERROR(lr.string("health_host", c.local.health_host));
    TURBINE_RETURN_IF_ERROR(lr.number("ready_timeout_s", c.local.ready_timeout_s));
    TURBINE_RETURN_IF_ERROR(lr.number("drain_timeout_s", c.local.drain_timeout_s));
  }
  TURBINE_ASSIGN_OR_RETURN(const json::object* k8s, r.object("kubernetes"));
  if (k8s) {
    ObjectReader kr(*k8s, "kubernetes");
    TURBINE_RETURN_IF_ERROR(
        kr.only({"api_server", "token_file", "ca_file", "namespace", "timeout_s"}));
    TURBINE_RETURN_IF_ERROR(kr.string("api_server", c.kubernetes.api_server));
    TURBINE_RETURN_IF_ERROR(kr.string("token_file", c.kubernetes.token_file));
    TURBINE_RETURN_IF_ERROR(kr.string("ca_file", c.kubernetes.ca_file));
    TURBINE_RETURN_IF_ERROR(kr.string("namespace", c.kubernetes.namespace_name));
    TURBINE_RETURN_IF_ERROR(kr.number("timeout_s", c.kubernetes.timeout_s));
  }
  if (const json::value* models = r.get("models")) {
    if (!models->is_array()) return key_error("models", "must be a list");
    for (size_t i = 0; i < models->as_array().size(); ++i) {
      const json::value& m = models->as_array()[i];
      const std::string mk = fmt::format("models[{}]", i);
      if (!m.is_object()) return key_error(mk, "must be an object");
      ModelConfig mc;
      TURBINE_RETURN_IF_ERROR(read_model(m.as_object(), mk, mc));
      c.models.push_back(std::move(mc));
    }
  }
  return c;
}

Result<PlannerConfig> load_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return invalid_argument("planner config: cannot read " + path, "config");
  std::stringstream ss;
  ss << in.rdbuf();
  auto c = config_from_json(ss.str());
  if (!c) return Status(c.status().code(), path + ": " + c.status().message(), c.status().field());
  return c;
}

}  // namespace turbine::planner
