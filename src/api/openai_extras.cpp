#include "api/openai_extras.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "api/codec_util.h"

namespace turbine::api {
namespace json = boost::json;
namespace {

// tool_choice: "none" | "auto" | "required" | {"type": "function", "function": {"name": ...}}.
Result<ToolChoice> read_chat_tool_choice(const json::value& v) {
  if (v.is_string()) {
    return tool_choice_from_string(std::string_view(v.get_string().data(), v.get_string().size()),
                                   "{\"type\": \"function\", \"function\": {\"name\": ...}}");
  }
  ToolChoice choice;
  if (!v.is_object()) return type_error("tool_choice", "a string or an object", v);
  const json::object& obj = v.get_object();
  const json::value* type = find_field(obj, "type");
  if (type == nullptr || !type->is_string() || type->get_string() != "function") {
    return invalid_argument("tool_choice.type must be 'function'", "tool_choice.type");
  }
  const json::value* fn = find_field(obj, "function");
  if (fn == nullptr) {
    return invalid_argument("tool_choice.function is required", "tool_choice.function");
  }
  if (!fn->is_object()) return type_error("tool_choice.function", "an object", *fn);
  const json::value* name = find_field(fn->get_object(), "name");
  if (name == nullptr) {
    return invalid_argument("tool_choice.function.name is required", "tool_choice.function.name");
  }
  TURBINE_ASSIGN_OR_RETURN(choice.function, read_string(*name, "tool_choice.function.name"));
  choice.mode = ToolChoice::Mode::kFunction;
  return choice;
}

Result<std::vector<std::pair<int32_t, float>>> read_logit_bias(const json::value& v) {
  if (!v.is_object()) return type_error("logit_bias", "an object", v);
  const json::object& obj = v.get_object();
  if (obj.size() > kMaxLogitBias) {
    return invalid_argument("logit_bias may hold at most " + std::to_string(kMaxLogitBias) +
                                " tokens, got " + std::to_string(obj.size()),
                            "logit_bias");
  }
  std::vector<std::pair<int32_t, float>> out;
  out.reserve(obj.size());
  for (const auto& kv : obj) {
    const std::string_view key(kv.key().data(), kv.key().size());
    int32_t id = -1;
    const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
    if (ec != std::errc() || end != key.data() + key.size() || id < 0) {
      return invalid_argument("logit_bias keys must be token ids (non-negative integers), got '" +
                                  std::string(key) + "'",
                              "logit_bias");
    }
    if (kv.value().is_null()) continue;
    TURBINE_ASSIGN_OR_RETURN(
        double bias, read_number(kv.value(), "logit_bias." + std::string(key), -100.0, 100.0));
    out.emplace_back(id, static_cast<float>(bias));
  }
  std::sort(out.begin(), out.end());
  // "7" and "07" name the same token: a 400 rather than a silent choice between the two.
  for (size_t i = 1; i < out.size(); ++i) {
    if (out[i].first == out[i - 1].first) {
      return invalid_argument("logit_bias names token " + std::to_string(out[i].first) + " twice",
                              "logit_bias");
    }
  }
  return out;
}

}  // namespace

Status read_chat_extras(const json::object& body, ChatRequest& req) {
  ChatExtras& x = req.extras;
  TURBINE_ASSIGN_OR_RETURN(x.tools, tool_specs_from_chat_tools(req.template_fields.tools_json));
  for (size_t i = 0; i < x.tools.size(); ++i) {
    const std::string param = "tools[" + std::to_string(i) + "].function.name";
    TURBINE_RETURN_IF_ERROR(check_tool_name(x.tools[i].name, 64, param));
    for (size_t j = 0; j < i; ++j) {
      if (x.tools[j].name == x.tools[i].name) {
        return invalid_argument("tools: the name '" + x.tools[i].name + "' is used twice", param);
      }
    }
  }
  if (const json::value* v = find_field(body, "tool_choice")) {
    TURBINE_ASSIGN_OR_RETURN(x.tool_choice, read_chat_tool_choice(*v));
  } else if (x.tools.empty()) {
    x.tool_choice.mode = ToolChoice::Mode::kNone;  // OpenAI's default without tools
  }
  TURBINE_RETURN_IF_ERROR(check_tool_choice(x, "tool_choice"));
  if (const json::value* v = find_field(body, "parallel_tool_calls")) {
    TURBINE_ASSIGN_OR_RETURN(x.parallel_tool_calls, read_bool(*v, "parallel_tool_calls"));
  }
  if (const json::value* v = find_field(body, "reasoning_effort")) {
    TURBINE_ASSIGN_OR_RETURN(std::string effort, read_string(*v, "reasoning_effort"));
    if (effort != "none" && effort != "minimal" && effort != "low" && effort != "medium" &&
        effort != "high") {
      return invalid_argument(
          "reasoning_effort must be one of 'none', 'minimal', 'low', 'medium', 'high', got '" +
              effort + "'",
          "reasoning_effort");
    }
    x.reasoning_effort = std::move(effort);
  }
  return Status::ok();
}

Status read_choice_fields(const json::object& body, bool chat, SamplingOptions& s) {
  if (const json::value* v = find_field(body, "n")) {
    TURBINE_ASSIGN_OR_RETURN(int64_t n, read_int(*v, "n", 1, kMaxChoices));
    s.n = static_cast<int>(n);
  }
  s.best_of = s.n;
  if (const json::value* v = find_field(body, "best_of")) {
    TURBINE_ASSIGN_OR_RETURN(int64_t b, read_int(*v, "best_of", 1, kMaxChoices));
    if (chat && b != 1) {
      return invalid_argument("best_of is only supported on /v1/completions", "best_of");
    }
    if (!chat) {
      if (b < s.n) {
        return invalid_argument(
            "best_of (" + std::to_string(b) + ") must be at least n (" + std::to_string(s.n) + ")",
            "best_of");
      }
      if (b > s.n && s.stream) {
        return invalid_argument("best_of larger than n cannot be used with stream", "best_of");
      }
      s.best_of = static_cast<int>(b);
    }
  }
  if (const json::value* v = find_field(body, "logit_bias")) {
    TURBINE_ASSIGN_OR_RETURN(s.logit_bias, read_logit_bias(*v));
  }
  return Status::ok();
}

}  // namespace turbine::api
