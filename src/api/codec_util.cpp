#include "api/codec_util.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cmath>
#include <random>

#include "api/json_writer.h"

namespace turbine::api {
namespace json = boost::json;

std::string format_sse_event(const SseEvent& event) {
  std::string out;
  out.reserve(event.event.size() + event.data.size() + 16);
  out += "event: ";
  out += event.event;
  out += "\ndata: ";
  out += event.data;
  out += "\n\n";
  return out;
}

std::string make_api_id(std::string_view prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(prefix);
  id += '_';
  for (int i = 0; i < 2; ++i) {
    uint64_t r = rng();
    for (int k = 0; k < 16; ++k, r >>= 4) id.push_back(kHex[r & 0xF]);
  }
  return id;
}

Result<json::object> parse_json_object(std::string_view body) {
  json::value v;
  try {
    std::error_code ec;
    json::parse_options opts;
    opts.max_depth = 64;
    v = json::parse(json::string_view(body.data(), body.size()), ec, {}, opts);
    if (ec) return invalid_argument("invalid JSON: " + ec.message());
  } catch (const std::exception& e) {  // bad_alloc on absurd input
    return invalid_argument(std::string("invalid JSON: ") + e.what());
  }
  if (!v.is_object()) return invalid_argument("request body must be a JSON object");
  return std::move(v.as_object());
}

const json::value* find_field(const json::object& obj, std::string_view key) {
  const json::value* v = obj.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr || v->is_null()) return nullptr;
  return v;
}

namespace {
const char* kind_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "a boolean";
    case json::kind::int64:
    case json::kind::uint64: return "an integer";
    case json::kind::double_: return "a number";
    case json::kind::string: return "a string";
    case json::kind::array: return "an array";
    case json::kind::object: return "an object";
  }
  return "unknown";
}

std::string fmt_num(double d) {
  std::string s;
  append_json_float(s, static_cast<float>(d));
  if (s.size() > 2 && s.ends_with(".0")) s.resize(s.size() - 2);
  return s;
}
}  // namespace

Status type_error(std::string_view param, std::string_view expected, const json::value& got) {
  return invalid_argument(
      std::string(param) + " must be " + std::string(expected) + ", got " + kind_name(got),
      std::string(param));
}

Result<int64_t> read_int(const json::value& v, std::string_view param_view, int64_t lo,
                         int64_t hi) {
  const std::string param(param_view);
  int64_t out = 0;
  if (v.is_int64()) {
    out = v.get_int64();
  } else if (v.is_uint64()) {
    if (v.get_uint64() > static_cast<uint64_t>(hi)) {
      return invalid_argument(param + " must be <= " + std::to_string(hi), param);
    }
    out = static_cast<int64_t>(v.get_uint64());
  } else if (v.is_double()) {
    const double d = v.get_double();
    if (!std::isfinite(d) || d != std::floor(d)) return type_error(param, "an integer", v);
    if (d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
      return invalid_argument(
          param + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", param);
    }
    out = static_cast<int64_t>(d);
  } else {
    return type_error(param, "an integer", v);
  }
  if (out < lo || out > hi) {
    return invalid_argument(param + " must be in [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "], got " + std::to_string(out),
                            param);
  }
  return out;
}

Result<double> read_number(const json::value& v, const std::string& param, double lo, double hi,
                           bool lo_open) {
  double d = 0;
  if (v.is_int64()) {
    d = static_cast<double>(v.get_int64());
  } else if (v.is_uint64()) {
    d = static_cast<double>(v.get_uint64());
  } else if (v.is_double()) {
    d = v.get_double();
  } else {
    return type_error(param, "a number", v);
  }
  if (!std::isfinite(d) || (lo_open ? d <= lo : d < lo) || d > hi) {
    return invalid_argument(param + " must be in " + (lo_open ? "(" : "[") + fmt_num(lo) + ", " +
                                fmt_num(hi) + "], got " + fmt_num(d),
                            param);
  }
  return d;
}

Result<std::string> read_string(const json::value& v, const std::string& param) {
  if (!v.is_string()) return type_error(param, "a string", v);
  return std::string(v.get_string().data(), v.get_string().size());
}

Result<bool> read_bool(const json::value& v, const std::string& param) {
  if (!v.is_bool()) return type_error(param, "a boolean", v);
  return v.get_bool();
}

Status check_tool_name(std::string_view name, size_t max_len, const std::string& param) {
  if (name.empty() || name.size() > max_len) {
    return invalid_argument(param + " must be 1 to " + std::to_string(max_len) + " characters",
                            param);
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) {
      return invalid_argument(
          param + " may contain only letters, digits, '_' and '-', got '" + std::string(name) + "'",
          param);
    }
  }
  return Status::ok();
}

Status check_parameters_schema(const json::value& schema, const std::string& param) {
  if (!schema.is_object()) return type_error(param, "a JSON Schema object", schema);
  const json::object& obj = schema.get_object();
  if (const json::value* type = find_field(obj, "type")) {
    if (!(type->is_string() && type->get_string() == "object")) {
      return invalid_argument(param + ".type must be 'object' (the arguments are an object)",
                              param + ".type");
    }
  }
  const json::object* properties = nullptr;
  if (const json::value* p = find_field(obj, "properties")) {
    if (!p->is_object()) return type_error(param + ".properties", "an object", *p);
    properties = &p->get_object();
    for (const auto& kv : *properties) {
      if (!kv.value().is_object() && !kv.value().is_bool()) {
        const std::string pp = param + ".properties." + std::string(kv.key());
        return type_error(pp, "a schema (an object or a boolean)", kv.value());
      }
    }
  }
  if (const json::value* r = find_field(obj, "required")) {
    if (!r->is_array()) return type_error(param + ".required", "an array of strings", *r);
    for (const json::value& name : r->get_array()) {
      if (!name.is_string()) return type_error(param + ".required", "an array of strings", name);
      if (properties != nullptr && !properties->contains(name.get_string())) {
        return invalid_argument(param + ".required names '" + std::string(name.get_string()) +
                                    "', which is not in properties",
                                param + ".required");
      }
    }
  }
  return Status::ok();
}

Result<std::vector<ToolSpec>> tool_specs_from_chat_tools(std::string_view tools_json) {
  std::vector<ToolSpec> out;
  if (tools_json.empty()) return out;
  std::error_code ec;
  const json::value v = json::parse(json::string_view(tools_json.data(), tools_json.size()), ec);
  if (ec || !v.is_array()) return invalid_argument("tools must be an array", "tools");
  const json::array& arr = v.get_array();
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string param = "tools[" + std::to_string(i) + "].function";
    const json::value* fn =
        arr[i].is_object() ? find_field(arr[i].get_object(), "function") : nullptr;
    if (fn == nullptr || !fn->is_object()) return invalid_argument(param + " is required", param);
    const json::object& f = fn->get_object();
    ToolSpec spec;
    const json::value* name = find_field(f, "name");
    if (name == nullptr) return invalid_argument(param + ".name is required", param + ".name");
    TURBINE_ASSIGN_OR_RETURN(spec.name, read_string(*name, param + ".name"));
    if (const json::value* d = find_field(f, "description")) {
      TURBINE_ASSIGN_OR_RETURN(spec.description, read_string(*d, param + ".description"));
    }
    if (const json::value* p = find_field(f, "parameters")) {
      TURBINE_RETURN_IF_ERROR(check_parameters_schema(*p, param + ".parameters"));
      spec.parameters_json = json::serialize(*p);
    }
    if (const json::value* s = find_field(f, "strict")) {
      TURBINE_ASSIGN_OR_RETURN(spec.strict, read_bool(*s, param + ".strict"));
    }
    out.push_back(std::move(spec));
  }
  return out;
}

Result<ToolChoice> tool_choice_from_string(std::string_view s, std::string_view object_form) {
  ToolChoice choice;
  if (s == "auto") return choice;
  if (s == "none") {
    choice.mode = ToolChoice::Mode::kNone;
  } else if (s == "required") {
    choice.mode = ToolChoice::Mode::kRequired;
  } else {
    return invalid_argument("tool_choice must be 'none', 'auto', 'required' or " +
                                std::string(object_form) + ", got '" + std::string(s) + "'",
                            "tool_choice");
  }
  return choice;
}

}  // namespace turbine::api
