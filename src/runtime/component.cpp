#include "runtime/component.h"

#include <charconv>
#include <vector>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace turbine::runtime {
namespace {

namespace json = boost::json;

bool valid_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::optional<ParsedKey> parse_key(std::string_view key, std::string_view bucket) {
  const auto parts = split(key, '/');
  if (parts.size() != 6 || parts[0] != "v1" || parts[1] != bucket) return std::nullopt;
  ParsedKey k;
  k.endpoint = {std::string(parts[2]), std::string(parts[3]), std::string(parts[4])};
  if (!k.endpoint.validate().is_ok()) return std::nullopt;
  const std::string_view id = parts[5];
  auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), k.instance_id, 16);
  if (ec != std::errc() || p != id.data() + id.size() || id.empty()) return std::nullopt;
  return k;
}

}  // namespace

Status EndpointId::validate() const {
  if (!valid_name(ns)) return invalid_argument("bad namespace name `" + ns + "`", "namespace");
  if (!valid_name(component)) return invalid_argument("bad component name `" + component + "`");
  if (!valid_name(endpoint)) return invalid_argument("bad endpoint name `" + endpoint + "`");
  return Status::ok();
}

std::string hex_id(uint64_t id) {
  return fmt::format("{:x}", id);
}

std::string instance_key(const EndpointId& ep, uint64_t instance_id) {
  return fmt::format("v1/instances/{}/{}/{}/{:x}", ep.ns, ep.component, ep.endpoint, instance_id);
}
std::string model_card_key(const EndpointId& ep, uint64_t instance_id) {
  return fmt::format("v1/mdc/{}/{}/{}/{:x}", ep.ns, ep.component, ep.endpoint, instance_id);
}
std::string instances_prefix(std::string_view ns) {
  return fmt::format("v1/instances/{}/", ns);
}
std::string model_cards_prefix(std::string_view ns) {
  return fmt::format("v1/mdc/{}/", ns);
}

std::optional<ParsedKey> parse_instance_key(std::string_view key) {
  return parse_key(key, "instances");
}
std::optional<ParsedKey> parse_model_card_key(std::string_view key) {
  return parse_key(key, "mdc");
}

std::string kv_events_subject(std::string_view ns, std::string_view component) {
  return fmt::format("{}.{}.kv_events", ns, component);
}
std::string load_subject(std::string_view ns, std::string_view component) {
  return fmt::format("{}.{}.load", ns, component);
}
std::string planner_decision_key(std::string_view ns, std::string_view model,
                                 std::string_view pool) {
  return fmt::format("v1/planner/{}/{}/{}", ns, model, pool);
}
std::string request_subject(const EndpointId& ep, uint64_t instance_id) {
  return fmt::format("{}.{}.{}.{:x}", ep.ns, ep.component, ep.endpoint, instance_id);
}
std::string inbox_subject(std::string_view ns, uint64_t nonce) {
  return fmt::format("_INBOX.{}.{:x}", ns, nonce);
}

std::string to_json(const InstanceRecord& r) {
  json::object o;
  o["version"] = InstanceRecord::kVersion;
  o["namespace"] = r.endpoint.ns;
  o["component"] = r.endpoint.component;
  o["endpoint"] = r.endpoint.endpoint;
  o["instance_id"] = r.instance_id;
  o["transport"] = json::object{{"tcp", r.address}};
  return json::serialize(o);
}

Result<InstanceRecord> instance_record_from_json(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return invalid_argument("instance record is not a JSON object");
  const json::object& o = v.get_object();
  InstanceRecord r;
  auto str = [&](const char* k, std::string& out) {
    const json::value* x = o.if_contains(k);
    if (!x || !x->is_string()) return false;
    out = std::string(x->get_string());
    return true;
  };
  const json::value* id = o.if_contains("instance_id");
  const json::value* tr = o.if_contains("transport");
  if (!str("namespace", r.endpoint.ns) || !str("component", r.endpoint.component) ||
      !str("endpoint", r.endpoint.endpoint) || !id || !(id->is_uint64() || id->is_int64()) || !tr ||
      !tr->is_object() || !tr->get_object().if_contains("tcp") ||
      !tr->get_object().at("tcp").is_string()) {
    return invalid_argument("instance record misses fields");
  }
  r.instance_id = id->is_uint64() ? id->get_uint64() : static_cast<uint64_t>(id->get_int64());
  r.address = std::string(tr->get_object().at("tcp").get_string());
  return r;
}

}  // namespace turbine::runtime
