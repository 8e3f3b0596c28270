#include "api/output_constraint.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "api/codec_util.h"

namespace turbine::api {
namespace json = boost::json;
namespace {

using Kind = OutputConstraint::Kind;

// Accumulates the request's constraints: a second one is an error naming it.
class Collector {
 public:
  Status add(Kind kind, std::string text, std::string param) {
    if (out_.active()) {
      return invalid_argument(
          "only one output constraint is allowed per request; got " + out_.param + " and " + param,
          param);
    }
    out_ = {kind, std::move(text), std::move(param)};
    return Status::ok();
  }
  OutputConstraint take() { return std::move(out_); }

 private:
  OutputConstraint out_;
};

// A JSON Schema given as an object (or a boolean schema), or as JSON text in a string (vLLM
// accepts both for guided_json and structured_outputs.json).
Result<std::string> schema_text(const json::value& v, const std::string& param) {
  if (v.is_object() || v.is_bool()) return json::serialize(v);
  if (v.is_string()) return std::string(v.get_string().data(), v.get_string().size());
  return type_error(param, "a JSON Schema (an object, or its JSON text)", v);
}

Result<std::string> choice_text(const json::value& v, const std::string& param) {
  if (!v.is_array()) return type_error(param, "an array of strings", v);
  if (v.get_array().empty()) return invalid_argument(param + " must not be empty", param);
  for (const json::value& c : v.get_array()) {
    if (!c.is_string()) return type_error(param + "[]", "a string", c);
  }
  return json::serialize(v);
}

Status read_response_format(const json::value& v, Collector& c) {
  const std::string param = "response_format";
  if (!v.is_object()) return type_error(param, "an object", v);
  const json::object& rf = v.get_object();
  const json::value* type = find_field(rf, "type");
  if (type == nullptr) return invalid_argument("response_format.type is required", param);
  if (!type->is_string()) return type_error("response_format.type", "a string", *type);
  const std::string_view t(type->get_string().data(), type->get_string().size());
  if (t == "text") return Status::ok();
  if (t == "json_object") return c.add(Kind::kJsonObject, "", param);
  if (t != "json_schema") {
    return invalid_argument(
        "response_format.type must be \"text\", \"json_object\" or "
        "\"json_schema\", got \"" +
            std::string(t) + "\"",
        param);
  }
  const json::value* js = find_field(rf, "json_schema");
  if (js == nullptr) {
    return invalid_argument("response_format.json_schema is required with type json_schema",
                            "response_format.json_schema");
  }
  if (!js->is_object()) return type_error("response_format.json_schema", "an object", *js);
  const json::object& o = js->get_object();
  if (const json::value* name = find_field(o, "name"); name != nullptr && !name->is_string()) {
    return type_error("response_format.json_schema.name", "a string", *name);
  }
  if (const json::value* strict = find_field(o, "strict");
      strict != nullptr && !strict->is_bool()) {
    return type_error("response_format.json_schema.strict", "a boolean", *strict);
  }
  const json::value* schema = find_field(o, "schema");
  if (schema == nullptr) {
    return invalid_argument("response_format.json_schema.schema is required",
                            "response_format.json_schema.schema");
  }
  if (!schema->is_object() && !schema->is_bool()) {
    return type_error("response_format.json_schema.schema", "an object", *schema);
  }
  return c.add(Kind::kJsonSchema, json::serialize(*schema), param);
}

Status read_structured_outputs(const json::value& v, Collector& c) {
  if (!v.is_object()) return type_error("structured_outputs", "an object", v);
  for (const auto& [key, value] : v.get_object()) {
    if (value.is_null()) continue;
    const std::string k(key.data(), key.size());
    const std::string param = "structured_outputs." + k;
    if (k == "json") {
      TURBINE_ASSIGN_OR_RETURN(std::string text, schema_text(value, param));
      TURBINE_RETURN_IF_ERROR(c.add(Kind::kJsonSchema, std::move(text), param));
    } else if (k == "regex") {
      TURBINE_ASSIGN_OR_RETURN(std::string text, read_string(value, param));
      TURBINE_RETURN_IF_ERROR(c.add(Kind::kRegex, std::move(text), param));
    } else if (k == "choice") {
      TURBINE_ASSIGN_OR_RETURN(std::string text, choice_text(value, param));
      TURBINE_RETURN_IF_ERROR(c.add(Kind::kChoice, std::move(text), param));
    } else if (k == "grammar") {
      TURBINE_ASSIGN_OR_RETURN(std::string text, read_string(value, param));
      TURBINE_RETURN_IF_ERROR(c.add(Kind::kGrammar, std::move(text), param));
    } else if (k == "json_object") {
      TURBINE_ASSIGN_OR_RETURN(bool on, read_bool(value, param));
      if (on) TURBINE_RETURN_IF_ERROR(c.add(Kind::kJsonObject, "", param));
    } else if (k == "disable_fallback" || k == "backend" || k == "_backend") {
      // Which engine enforces the constraint, and whether it may fall back to another: there is
      // one here, and it never changes what the output matches.
    } else if ((value.is_bool() && !value.get_bool()) ||
               (value.is_string() && value.get_string().empty())) {
      // disable_any_whitespace false, whitespace_pattern "": the defaults.
    } else {
      return invalid_argument(param + " is not supported", param);
    }
  }
  return Status::ok();
}

}  // namespace

Result<OutputConstraint> read_output_constraint(const json::object& body) {
  Collector c;
  if (const json::value* v = find_field(body, "response_format")) {
    TURBINE_RETURN_IF_ERROR(read_response_format(*v, c));
  }
  if (const json::value* v = find_field(body, "structured_outputs")) {
    TURBINE_RETURN_IF_ERROR(read_structured_outputs(*v, c));
  }
  if (const json::value* v = find_field(body, "guided_json")) {
    TURBINE_ASSIGN_OR_RETURN(std::string text, schema_text(*v, "guided_json"));
    TURBINE_RETURN_IF_ERROR(c.add(Kind::kJsonSchema, std::move(text), "guided_json"));
  }
  if (const json::value* v = find_field(body, "guided_regex")) {
    TURBINE_ASSIGN_OR_RETURN(std::string text, read_string(*v, "guided_regex"));
    TURBINE_RETURN_IF_ERROR(c.add(Kind::kRegex, std::move(text), "guided_regex"));
  }
  if (const json::value* v = find_field(body, "guided_choice")) {
    TURBINE_ASSIGN_OR_RETURN(std::string text, choice_text(*v, "guided_choice"));
    TURBINE_RETURN_IF_ERROR(c.add(Kind::kChoice, std::move(text), "guided_choice"));
  }
  if (const json::value* v = find_field(body, "guided_grammar")) {
    TURBINE_ASSIGN_OR_RETURN(std::string text, read_string(*v, "guided_grammar"));
    TURBINE_RETURN_IF_ERROR(c.add(Kind::kGrammar, std::move(text), "guided_grammar"));
  }
  if (const json::value* v = find_field(body, "guided_decoding_backend")) {
    // vLLM's choice of enforcement library: informational here (one implementation).
    if (!v->is_string()) return type_error("guided_decoding_backend", "a string", *v);
  }
  return c.take();
}

}  // namespace turbine::api
