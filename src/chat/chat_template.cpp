#include "chat/chat_template.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>

namespace turbine::chat {

namespace {

constexpr int kMaxContextDepth = 256;

// Names the renderer defines itself; the reference refuses to redeclare them.
constexpr std::string_view kReservedNames[] = {
    "false",           "true",  "none",         "False",    "True", "None",
    "raise_exception", "range", "strftime_now", "namespace"};

std::tm system_local_time() {
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm t{};
  localtime_r(&now, &t);
  return t;
}

// A JavaScript "array index" key ("0", "17", not "01"), which Object.entries lists first.
bool is_array_index(const std::string& key, uint64_t* index) {
  if (key.empty() || key.size() > 10) return false;
  if (key.size() > 1 && key[0] == '0') return false;
  uint64_t v = 0;
  for (char c : key) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v >= 4294967295ull) return false;
  *index = v;
  return true;
}

// Converts JSON the way the reference sees it after JSON.parse: numbers without a fraction are
// integers, and integer-like object keys come first in ascending order.
template <typename Json>
Result<Value> from_json(const Json& j, int depth) {
  if (depth > kMaxContextDepth) {
    return invalid_argument("chat template variables nested deeper than " +
                            std::to_string(kMaxContextDepth) + " levels");
  }
  switch (j.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded: return Value::null();
    case nlohmann::json::value_t::boolean: return Value::boolean(j.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value::integer(static_cast<double>(j.template get<int64_t>()));
    case nlohmann::json::value_t::number_unsigned:
      return Value::integer(static_cast<double>(j.template get<uint64_t>()));
    case nlohmann::json::value_t::number_float: {
      double d = j.template get<double>();
      if (std::isfinite(d) && std::floor(d) == d) return Value::integer(d);
      return Value::floating(d);
    }
    case nlohmann::json::value_t::string:
      return Value::string(j.template get_ref<const std::string&>());
    case nlohmann::json::value_t::array: {
      Array items;
      items.reserve(j.size());
      for (const auto& e : j) {
        TURBINE_ASSIGN_OR_RETURN(Value v, from_json(e, depth + 1));
        items.push_back(std::move(v));
      }
      return Value::array(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      std::vector<std::pair<uint64_t, const std::string*>> index_keys;
      for (auto it = j.begin(); it != j.end(); ++it) {
        uint64_t index = 0;
        if (is_array_index(it.key(), &index)) index_keys.emplace_back(index, &it.key());
      }
      std::sort(index_keys.begin(), index_keys.end());
      Object obj;
      for (const auto& [index, key] : index_keys) {
        TURBINE_ASSIGN_OR_RETURN(Value v, from_json(j.at(*key), depth + 1));
        obj.set(*key, std::move(v));
      }
      for (auto it = j.begin(); it != j.end(); ++it) {
        uint64_t index = 0;
        if (is_array_index(it.key(), &index)) continue;
        TURBINE_ASSIGN_OR_RETURN(Value v, from_json(it.value(), depth + 1));
        obj.set(it.key(), std::move(v));
      }
      return Value::object(std::move(obj));
    }
    case nlohmann::json::value_t::binary:
      return invalid_argument("chat template variables cannot hold binary values");
  }
  return Value::null();
}

}  // namespace

Result<ChatTemplate> ChatTemplate::parse(std::string_view source, ChatTemplateOptions options) {
  try {
    TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<Program> program,
                             parse_template(source, options.parse_limits));
    if (!options.local_time) options.local_time = system_local_time;
    auto compiled = std::make_shared<Compiled>();
    compiled->program = std::move(program);
    compiled->options = std::move(options);
    return ChatTemplate(std::move(compiled));
  } catch (const std::exception& e) {
    return internal_error(std::string("chat template parse failed: ") + e.what());
  }
}

template <typename Json>
Result<std::string> ChatTemplate::render_impl(const Json& context) const {
  try {
    if (!context.is_object() && !context.is_null()) {
      return invalid_argument("chat template context must be a JSON object");
    }
    Interpreter interpreter(compiled_->options.render_limits, compiled_->options.local_time);
    Env globals(nullptr);
    interpreter.install_globals(globals);
    if (context.is_object()) {
      TURBINE_ASSIGN_OR_RETURN(Value vars, from_json(context, 0));
      for (const auto& [name, value] : vars.object().entries()) {
        if (std::find(std::begin(kReservedNames), std::end(kReservedNames), name) !=
            std::end(kReservedNames)) {
          return invalid_argument("chat template variable '" + name + "' is reserved", name);
        }
        globals.set(name, value);
      }
    }
    return interpreter.render(*compiled_->program, globals);
  } catch (const std::exception& e) {
    return internal_error(std::string("chat template render failed: ") + e.what());
  }
}

Result<std::string> ChatTemplate::render(const nlohmann::ordered_json& context) const {
  return render_impl(context);
}

Result<std::string> ChatTemplate::render(const nlohmann::json& context) const {
  return render_impl(context);
}

Result<std::string> apply_chat_template(const ChatTemplate& tmpl,
                                        const nlohmann::ordered_json& messages,
                                        const nlohmann::ordered_json& tools,
                                        bool add_generation_prompt, const std::string& bos_token,
                                        const std::string& eos_token,
                                        const nlohmann::ordered_json& extra_kwargs) {
  try {
    if (!extra_kwargs.is_null() && !extra_kwargs.is_object()) {
      return invalid_argument("chat template kwargs must be a JSON object", "chat_template_kwargs");
    }
    nlohmann::ordered_json context = nlohmann::ordered_json::object();
    context["messages"] = messages;
    context["tools"] = tools;
    context["add_generation_prompt"] = add_generation_prompt;
    context["bos_token"] = bos_token;
    context["eos_token"] = eos_token;
    if (extra_kwargs.is_object()) {
      for (auto it = extra_kwargs.begin(); it != extra_kwargs.end(); ++it) {
        if (context.contains(it.key())) {
          return invalid_argument("chat template kwarg '" + it.key() + "' is set by the server",
                                  "chat_template_kwargs");
        }
        context[it.key()] = it.value();
      }
    }
    return tmpl.render(context);
  } catch (const std::exception& e) {
    return internal_error(std::string("chat template render failed: ") + e.what());
  }
}

}  // namespace turbine::chat
