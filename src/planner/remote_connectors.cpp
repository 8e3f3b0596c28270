// The kubernetes and virtual connectors, and counting registered workers in discovery.
//
// kubernetes: GET and PATCH (JSON merge patch) of
//   /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale
// with the pod's service-account token (re-read for every call: projected tokens rotate) and
// the cluster CA. Exactly these two verbs on deployments/scale, which the chart's Role grants.
// Kubernetes restarts pods that fail; the connector reports what the scale subresource says.
//
// virtual: the decision goes to discovery under v1/planner/{ns}/{model}/{pool} (under the
// planner's lease) as {"version", "model", "pool", "replicas", "reason", "decision"}; whoever
// acts on it starts or stops workers, and the workers registered in discovery are the pool's
// ready count.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "planner/connector.h"
#include "planner/http_fetch.h"
#include "runtime/component.h"
#include "runtime/discovery.h"

namespace turbine::planner {
namespace {

namespace json = boost::json;

constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

Result<std::string> read_file(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  if (!in)
    return invalid_argument(fmt::format("planner config: {}: cannot read {}", key, path), key);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

class KubernetesConnector final : public Connector {
 public:
  explicit KubernetesConnector(KubernetesConnectorConfig c) : config_(std::move(c)) {}

  Result<PoolState> state(const ModelConfig& model, const PoolConfig& pool) override {
    TURBINE_ASSIGN_OR_RETURN(json::object scale, call("GET", pool.deployment, ""));
    PoolState s;
    const json::value* spec = scale.if_contains("spec");
    const json::value* status = scale.if_contains("status");
    auto replicas_of = [](const json::value* v) -> int {
      if (!v || !v->is_object()) return 0;
      const json::value* r = v->as_object().if_contains("replicas");
      return r && r->is_int64() ? static_cast<int>(r->as_int64()) : 0;
    };
    s.replicas = replicas_of(spec);
    s.ready = std::min(s.replicas, replicas_of(status));
    return s;
  }

  Status scale(const ModelConfig& model, const PoolConfig& pool, int replicas,
               const std::string& reason) override {
    json::object body{{"spec", json::object{{"replicas", replicas}}}};
    auto r = call("PATCH", pool.deployment, json::serialize(body));
    if (!r) return r.status();
    spdlog::info("planner: deployment {} scaled to {} ({})", pool.deployment, replicas, reason);
    return Status::ok();
  }

 private:
  Result<json::object> call(const std::string& method, const std::string& deployment,
                            const std::string& body) {
    TURBINE_ASSIGN_OR_RETURN(std::string token,
                             read_file(config_.token_file, "kubernetes.token_file"));
    HttpCall c;
    c.method = method;
    c.url = config_.api_server + deployment_scale_path(config_.namespace_name, deployment);
    c.headers = {"Authorization: Bearer " + token, "Accept: application/json"};
    if (method == "PATCH") {
      c.headers.push_back("Content-Type: application/merge-patch+json");
      c.body = body;
    }
    c.timeout_s = config_.timeout_s;
    c.ca_file = config_.ca_file;
    TURBINE_ASSIGN_OR_RETURN(HttpReply reply, http_call(c));
    if (reply.status != 200) {
      std::string message = reply.body.substr(0, 300);
      boost::system::error_code ec;
      json::value v = json::parse(reply.body, ec);
      if (!ec && v.is_object()) {
        if (const json::value* m = v.as_object().if_contains("message"); m && m->is_string())
          message = std::string(m->as_string());
      }
      return Status(reply.status == 404 ? StatusCode::kNotFound : StatusCode::kUnavailable,
                    fmt::format("{} deployment {} scale: HTTP {}: {}", method, deployment,
                                reply.status, message));
    }
    boost::system::error_code ec;
    json::value v = json::parse(reply.body, ec);
    if (ec || !v.is_object())
      return Status(StatusCode::kUnavailable,
                    fmt::format("{} deployment {} scale: not a JSON object", method, deployment));
    return std::move(v.as_object());
  }

  KubernetesConnectorConfig config_;
};

class VirtualConnector final : public Connector {
 public:
  VirtualConnector(std::shared_ptr<runtime::Discovery> d, std::string ns)
      : discovery_(std::move(d)), ns_(std::move(ns)) {}

  Result<PoolState> state(const ModelConfig& model, const PoolConfig& pool) override {
    TURBINE_ASSIGN_OR_RETURN(auto counts, count_registered_workers(*discovery_, ns_));
    PoolState s;
    auto it = counts.find({model.name, pool.role});
    s.ready = it == counts.end() ? 0 : it->second;
    auto d = decided_.find(key(model, pool));
    s.replicas = d == decided_.end() ? s.ready : d->second;
    s.ready = std::min(s.ready, s.replicas);
    return s;
  }

  Status scale(const ModelConfig& model, const PoolConfig& pool, int replicas,
               const std::string& reason) override {
    const std::string k = key(model, pool);
    json::object o{
        {"version", 1},         {"model", model.name}, {"pool", pool_role_name(pool.role)},
        {"replicas", replicas}, {"reason", reason},    {"decision", ++decisions_}};
    TURBINE_RETURN_IF_ERROR(discovery_->register_key(k, json::serialize(o)));
    decided_[k] = replicas;
    return Status::ok();
  }

 private:
  std::string key(const ModelConfig& model, const PoolConfig& pool) const {
    return runtime::planner_decision_key(ns_, model.name, pool_role_name(pool.role));
  }
  std::shared_ptr<runtime::Discovery> discovery_;
  std::string ns_;
  std::map<std::string, int> decided_;
  int64_t decisions_ = 0;
};

}  // namespace

std::string deployment_scale_path(const std::string& ns, const std::string& deployment) {
  return fmt::format("/apis/apps/v1/namespaces/{}/deployments/{}/scale", ns, deployment);
}

Result<std::map<std::pair<std::string, PoolRole>, int>> count_registered_workers(
    runtime::Discovery& discovery, const std::string& ns) {
  TURBINE_ASSIGN_OR_RETURN(auto cards, discovery.list(runtime::model_cards_prefix(ns)));
  std::map<std::pair<std::string, PoolRole>, int> out;
  for (const runtime::KeyValue& kv : cards) {
    // Only the served name matters here: read it without the frontend's full card checks, so
    // cards of a newer version still count.
    auto key = runtime::parse_model_card_key(kv.key);
    boost::system::error_code ec;
    json::value card = json::parse(kv.value, ec);
    if (!key || ec || !card.is_object()) continue;
    const json::value* name = card.as_object().if_contains("served_name");
    if (!name || !name->is_string() || name->as_string().empty()) continue;
    const PoolRole role = key->endpoint.component == runtime::kPrefillComponent ? PoolRole::kPrefill
                                                                                : PoolRole::kDecode;
    ++out[{std::string(name->as_string()), role}];
  }
  return out;
}

Result<std::unique_ptr<Connector>> make_kubernetes_connector(KubernetesConnectorConfig c) {
  if (c.api_server.empty()) {
    const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
    const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host)
      return invalid_argument(
          "planner config: kubernetes.api_server: not set and KUBERNETES_SERVICE_HOST is empty "
          "(not in a pod?)",
          "kubernetes.api_server");
    const std::string h = host;
    c.api_server =
        fmt::format("https://{}:{}", h.find(':') != std::string::npos ? "[" + h + "]" : h,
                    port && *port ? port : "443");
  }
  while (!c.api_server.empty() && c.api_server.back() == '/') c.api_server.pop_back();
  if (c.api_server.rfind("https://", 0) != 0 && c.api_server.rfind("http://", 0) != 0)
    return invalid_argument("planner config: kubernetes.api_server: must be an https:// URL",
                            "kubernetes.api_server");
  if (c.token_file.empty()) c.token_file = std::string(kServiceAccountDir) + "/token";
  if (c.ca_file.empty()) c.ca_file = std::string(kServiceAccountDir) + "/ca.crt";
  TURBINE_ASSIGN_OR_RETURN(std::string token, read_file(c.token_file, "kubernetes.token_file"));
  if (token.empty())
    return invalid_argument("planner config: kubernetes.token_file: " + c.token_file + " is empty",
                            "kubernetes.token_file");
  if (c.api_server.rfind("https://", 0) == 0) {
    std::ifstream ca(c.ca_file);
    if (!ca)
      return invalid_argument("planner config: kubernetes.ca_file: cannot read " + c.ca_file,
                              "kubernetes.ca_file");
  }
  if (c.namespace_name.empty()) {
    auto ns = read_file(std::string(kServiceAccountDir) + "/namespace", "kubernetes.namespace");
    if (!ns) return ns.status();
    c.namespace_name = *ns;
  }
  return std::unique_ptr<Connector>(std::make_unique<KubernetesConnector>(std::move(c)));
}

std::unique_ptr<Connector> make_virtual_connector(std::shared_ptr<runtime::Discovery> discovery,
                                                  std::string ns) {
  return std::make_unique<VirtualConnector>(std::move(discovery), std::move(ns));
}

}  // namespace turbine::planner
