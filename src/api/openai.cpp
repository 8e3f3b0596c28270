#include "api/openai.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <cmath>
#include <limits>

#include "api/codec_util.h"
#include "api/json_writer.h"
#include "api/openai_extras.h"

namespace turbine::api {
namespace json = boost::json;
// Request bodies are read with codec_util's strict readers (parse_json_object, find_field,
// read_int, type_error). Boost.JSON rejects invalid UTF-8 inside strings, so every string read
// below is valid UTF-8; an explicit null is "use the default", as in OpenAI.
namespace {

Result<double> as_number(const json::value& v, std::string_view param) {
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
  if (!std::isfinite(d)) {
    return invalid_argument(std::string(param) + " must be finite", std::string(param));
  }
  return d;
}

// The shortest text that reads back as `d` ("2", "0.1", "1e+308"): the value the client sent,
// even where it does not fit a float (the JSON float writer would print its sentinel).
std::string fmt_num(double d) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  return std::string(buf, static_cast<size_t>(end - buf));
}

// Reads an optional float field into `out`, checking lo <= v <= hi (or lo < v if lo_open).
Status read_float(const json::object& obj, std::string_view key, float& out, double lo, double hi,
                  bool lo_open = false) {
  const json::value* v = find_field(obj, key);
  if (v == nullptr) return Status::ok();
  TURBINE_ASSIGN_OR_RETURN(double d, as_number(*v, key));
  if ((lo_open ? d <= lo : d < lo) || d > hi) {
    std::string range = (lo_open ? "(" : "[") + fmt_num(lo) + ", " +
                        (hi == std::numeric_limits<double>::max() ? "inf)" : fmt_num(hi) + "]");
    return invalid_argument(std::string(key) + " must be in " + range + ", got " + fmt_num(d),
                            std::string(key));
  }
  out = static_cast<float>(d);
  return Status::ok();
}

Status read_bool(const json::object& obj, std::string_view key, bool& out) {
  const json::value* v = find_field(obj, key);
  if (v == nullptr) return Status::ok();
  if (!v->is_bool()) return type_error(key, "a boolean", *v);
  out = v->get_bool();
  return Status::ok();
}

Status read_model(const json::object& obj, std::string& out, bool required) {
  const json::value* v = find_field(obj, "model");
  if (v == nullptr) {
    if (required) return invalid_argument("model is required", "model");
    return Status::ok();
  }
  if (!v->is_string()) return type_error("model", "a string", *v);
  out.assign(v->get_string().data(), v->get_string().size());
  return Status::ok();
}

Result<std::vector<int32_t>> as_token_array(const json::value& v, std::string_view param) {
  if (!v.is_array()) return type_error(param, "an array of token ids", v);
  std::vector<int32_t> out;
  out.reserve(v.get_array().size());
  for (const json::value& e : v.get_array()) {
    TURBINE_ASSIGN_OR_RETURN(int64_t id,
                             read_int(e, param, 0, std::numeric_limits<int32_t>::max()));
    out.push_back(static_cast<int32_t>(id));
  }
  return out;
}

// Options of OpenAI or vLLM that would change the output and that we do not implement: a 400
// when set to anything but null, false or an empty value. Chat-only and completions-only fields
// are checked on both endpoints: vLLM accepts most of them on both.
constexpr std::string_view kUnsupportedFields[] = {"prompt_logprobs",
                                                   "include_stop_str_in_output",
                                                   "use_beam_search",
                                                   "length_penalty",
                                                   "allowed_token_ids",
                                                   "bad_words",
                                                   "logits_processors",
                                                   "truncate_prompt_tokens",
                                                   "return_tokens_as_token_ids",
                                                   "return_token_ids",
                                                   "functions",
                                                   "function_call",
                                                   "audio",
                                                   "prediction",
                                                   "web_search_options",
                                                   "verbosity",
                                                   "guided_decoding",
                                                   "guided_whitespace_pattern",
                                                   "spaces_between_special_tokens",
                                                   "kv_transfer_params",
                                                   "vllm_xargs"};

bool is_empty_value(const json::value& v) {
  return v.is_null() || (v.is_bool() && !v.get_bool()) ||
         (v.is_string() && v.get_string().empty()) || (v.is_array() && v.get_array().empty()) ||
         (v.is_object() && v.get_object().empty());
}

Status reject_unsupported(const json::object& obj, bool chat) {
  for (std::string_view key : kUnsupportedFields) {
    const json::value* v = find_field(obj, key);
    if (v == nullptr || is_empty_value(*v)) continue;
    // vLLM's default for spaces_between_special_tokens is true; only false would change text.
    if (key == "spaces_between_special_tokens" && v->is_bool() && v->get_bool()) continue;
    return invalid_argument(std::string(key) + " is not supported", std::string(key));
  }
  if (const json::value* v = find_field(obj, "modalities")) {
    if (!v->is_array()) return type_error("modalities", "an array", *v);
    for (const json::value& m : v->get_array()) {
      if (!(m.is_string() && m.get_string() == "text")) {
        return invalid_argument("modalities: only \"text\" is supported", "modalities");
      }
    }
  }
  // vLLM echoes the prompt on chat with `echo: true`; other values are not vLLM's field.
  if (const json::value* v = find_field(obj, "echo");
      chat && v != nullptr && v->is_bool() && v->get_bool()) {
    return invalid_argument("echo is not supported on chat completions", "echo");
  }
  if (const json::value* v = find_field(obj, "stream_options")) {
    if (v->is_object()) {
      if (const json::value* c = find_field(v->get_object(), "continuous_usage_stats")) {
        if (!is_empty_value(*c)) {
          return invalid_argument("stream_options.continuous_usage_stats is not supported",
                                  "stream_options");
        }
      }
    }
  }
  return Status::ok();
}

Status read_sampling(const json::object& obj, bool chat, SamplingOptions& s) {
  const json::value* v = nullptr;
  // max_completion_tokens is the newer name in chat; it wins when both are given.
  if (chat && (v = find_field(obj, "max_completion_tokens")) != nullptr) {
    TURBINE_ASSIGN_OR_RETURN(
        int64_t n, read_int(*v, "max_completion_tokens", 1, std::numeric_limits<int32_t>::max()));
    s.max_tokens = static_cast<int>(n);
  } else if ((v = find_field(obj, "max_tokens")) != nullptr) {
    // Completions accept 0 with echo (checked below): lm-eval's loglikelihood requests.
    TURBINE_ASSIGN_OR_RETURN(
        int64_t n, read_int(*v, "max_tokens", chat ? 1 : 0, std::numeric_limits<int32_t>::max()));
    s.max_tokens = static_cast<int>(n);
  }
  TURBINE_RETURN_IF_ERROR(read_float(obj, "temperature", s.temperature, 0.0, 2.0));
  TURBINE_RETURN_IF_ERROR(read_float(obj, "top_p", s.top_p, 0.0, 1.0, /*lo_open=*/true));
  TURBINE_RETURN_IF_ERROR(read_float(obj, "min_p", s.min_p, 0.0, 1.0));
  TURBINE_RETURN_IF_ERROR(read_float(obj, "presence_penalty", s.presence_penalty, -2.0, 2.0));
  TURBINE_RETURN_IF_ERROR(read_float(obj, "frequency_penalty", s.frequency_penalty, -2.0, 2.0));
  TURBINE_RETURN_IF_ERROR(read_float(obj, "repetition_penalty", s.repetition_penalty, 0.0,
                                     std::numeric_limits<double>::max(), /*lo_open=*/true));
  if ((v = find_field(obj, "top_k")) != nullptr) {
    TURBINE_ASSIGN_OR_RETURN(int64_t k,
                             read_int(*v, "top_k", -1, std::numeric_limits<int32_t>::max()));
    s.top_k = static_cast<int>(k);
  }
  if ((v = find_field(obj, "seed")) != nullptr) {
    if (v->is_uint64()) {
      s.seed = v->get_uint64();
    } else {
      TURBINE_ASSIGN_OR_RETURN(int64_t seed,
                               read_int(*v, "seed", std::numeric_limits<int64_t>::min(),
                                        std::numeric_limits<int64_t>::max()));
      s.seed = static_cast<uint64_t>(seed);
    }
  }
  if ((v = find_field(obj, "stop")) != nullptr) {
    if (v->is_string()) {
      if (!v->get_string().empty()) s.stop.emplace_back(v->get_string().c_str());
    } else if (v->is_array()) {
      if (v->get_array().size() > kMaxStopStrings) {
        return invalid_argument(
            "stop may contain at most " + std::to_string(kMaxStopStrings) + " strings", "stop");
      }
      for (const json::value& e : v->get_array()) {
        if (!e.is_string()) return type_error("stop", "a string or an array of strings", e);
        if (!e.get_string().empty()) {
          s.stop.emplace_back(e.get_string().data(), e.get_string().size());
        }
      }
    } else {
      return type_error("stop", "a string or an array of strings", *v);
    }
  }
  if ((v = find_field(obj, "stop_token_ids")) != nullptr) {
    TURBINE_ASSIGN_OR_RETURN(s.stop_token_ids, as_token_array(*v, "stop_token_ids"));
  }
  TURBINE_RETURN_IF_ERROR(read_bool(obj, "ignore_eos", s.ignore_eos));
  // vLLM's priority class: any integer (null: the default). Whether the server accepts a
  // non-zero value is the engine's scheduling policy's to say (engine/scheduler.h).
  if ((v = find_field(obj, "priority")) != nullptr && !v->is_null()) {
    TURBINE_ASSIGN_OR_RETURN(int64_t prio,
                             read_int(*v, "priority", std::numeric_limits<int32_t>::min(),
                                      std::numeric_limits<int32_t>::max()));
    s.priority = static_cast<int>(prio);
  }
  if ((v = find_field(obj, "min_tokens")) != nullptr) {
    TURBINE_ASSIGN_OR_RETURN(int64_t n,
                             read_int(*v, "min_tokens", 0, std::numeric_limits<int32_t>::max()));
    if (s.max_tokens && n > *s.max_tokens) {
      return invalid_argument("min_tokens must be <= max_tokens, got " + std::to_string(n),
                              "min_tokens");
    }
    s.min_tokens = static_cast<int>(n);
  }
  TURBINE_RETURN_IF_ERROR(read_bool(obj, "skip_special_tokens", s.skip_special_tokens));
  TURBINE_RETURN_IF_ERROR(read_bool(obj, "stream", s.stream));
  if ((v = find_field(obj, "stream_options")) != nullptr) {
    if (!v->is_object()) return type_error("stream_options", "an object", *v);
    if (!s.stream) {
      return invalid_argument("stream_options is only allowed when stream is true",
                              "stream_options");
    }
    TURBINE_RETURN_IF_ERROR(read_bool(v->get_object(), "include_usage", s.include_usage));
  }
  if (chat) {
    bool want = false;
    TURBINE_RETURN_IF_ERROR(read_bool(obj, "logprobs", want));
    int top = 0;
    if ((v = find_field(obj, "top_logprobs")) != nullptr) {
      TURBINE_ASSIGN_OR_RETURN(int64_t k, read_int(*v, "top_logprobs", 0, kMaxLogprobs));
      if (!want) {
        return invalid_argument("top_logprobs requires logprobs to be true", "top_logprobs");
      }
      top = static_cast<int>(k);
    }
    if (want) s.logprobs = top;
  } else {
    if ((v = find_field(obj, "logprobs")) != nullptr) {
      TURBINE_ASSIGN_OR_RETURN(int64_t k, read_int(*v, "logprobs", 0, kMaxLogprobs));
      s.logprobs = static_cast<int>(k);
    }
    TURBINE_RETURN_IF_ERROR(read_bool(obj, "echo", s.echo));
    if (s.max_tokens && *s.max_tokens == 0 && !s.echo) {
      return invalid_argument("max_tokens must be at least 1, got 0 (0 is allowed with echo)",
                              "max_tokens");
    }
  }
  // Features we cannot honour are rejected rather than silently ignored.
  TURBINE_RETURN_IF_ERROR(reject_unsupported(obj, chat));
  return read_choice_fields(obj, chat, s);
}

Result<std::vector<PromptInput>> read_prompt(const json::object& obj) {
  const json::value* v = find_field(obj, "prompt");
  if (v == nullptr) return invalid_argument("prompt is required", "prompt");
  std::vector<PromptInput> out;
  if (v->is_string()) {
    out.push_back({std::string(v->get_string().data(), v->get_string().size()), {}, false});
    return out;
  }
  if (!v->is_array()) {
    return type_error("prompt", "a string, an array of strings or an array of token ids", *v);
  }
  const json::array& arr = v->get_array();
  if (arr.empty()) return invalid_argument("prompt must not be empty", "prompt");
  const json::value& first = arr.front();
  if (first.is_string()) {
    for (const json::value& e : arr) {
      if (!e.is_string()) return invalid_argument("prompt mixes strings and other types", "prompt");
      out.push_back({std::string(e.get_string().data(), e.get_string().size()), {}, false});
    }
  } else if (first.is_array()) {
    for (const json::value& e : arr) {
      TURBINE_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, as_token_array(e, "prompt"));
      if (tokens.empty()) return invalid_argument("prompt must not be empty", "prompt");
      out.push_back({{}, std::move(tokens), true});
    }
  } else {
    TURBINE_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, as_token_array(*v, "prompt"));
    out.push_back({{}, std::move(tokens), true});
  }
  return out;
}

bool is_known_role(std::string_view role) {
  return role == "system" || role == "user" || role == "assistant" || role == "tool" ||
         role == "developer";
}

// An object member that must be a non-empty string; `param` names it in the error.
Status check_name(const json::object& obj, std::string_view key, const std::string& param) {
  const json::value* v = find_field(obj, key);
  if (v == nullptr) return invalid_argument(param + " is required", param);
  if (!v->is_string()) return type_error(param, "a string", *v);
  if (v->get_string().empty()) return invalid_argument(param + " must not be empty", param);
  return Status::ok();
}

// An assistant message's tool_calls: [{id?, type?: "function", function: {name, arguments}}].
// Arguments are the JSON text OpenAI clients send (an object is accepted as well).
Status check_tool_calls(const json::value& calls, const std::string& role,
                        const std::string& param) {
  if (!calls.is_array()) return type_error(param, "an array", calls);
  if (role != "assistant" && !calls.get_array().empty()) {
    return invalid_argument(param + " is only allowed on assistant messages", param);
  }
  const json::array& arr = calls.get_array();
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string cparam = param + "[" + std::to_string(i) + "]";
    if (!arr[i].is_object()) return type_error(cparam, "an object", arr[i]);
    const json::object& call = arr[i].get_object();
    if (const json::value* type = find_field(call, "type")) {
      if (!(type->is_string() && type->get_string() == "function")) {
        return invalid_argument(cparam + ".type must be 'function'", cparam + ".type");
      }
    }
    const json::value* fn = find_field(call, "function");
    if (fn == nullptr)
      return invalid_argument(cparam + ".function is required", cparam + ".function");
    if (!fn->is_object()) return type_error(cparam + ".function", "an object", *fn);
    TURBINE_RETURN_IF_ERROR(check_name(fn->get_object(), "name", cparam + ".function.name"));
    if (const json::value* a = find_field(fn->get_object(), "arguments")) {
      if (!a->is_string() && !a->is_object()) {
        return type_error(cparam + ".function.arguments", "a string", *a);
      }
    }
  }
  return Status::ok();
}

// `tools`: [{type: "function", function: {name, description?, parameters?}}], as OpenAI.
Status check_tools(const json::value& tools) {
  if (!tools.is_array()) return type_error("tools", "an array", tools);
  const json::array& arr = tools.get_array();
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string param = "tools[" + std::to_string(i) + "]";
    if (!arr[i].is_object()) return type_error(param, "an object", arr[i]);
    const json::object& tool = arr[i].get_object();
    const json::value* type = find_field(tool, "type");
    if (type == nullptr || !(type->is_string() && type->get_string() == "function")) {
      return invalid_argument(param + ".type must be 'function' (the only tool type supported)",
                              param + ".type");
    }
    const json::value* fn = find_field(tool, "function");
    if (fn == nullptr)
      return invalid_argument(param + ".function is required", param + ".function");
    if (!fn->is_object()) return type_error(param + ".function", "an object", *fn);
    TURBINE_RETURN_IF_ERROR(check_name(fn->get_object(), "name", param + ".function.name"));
    if (const json::value* p = find_field(fn->get_object(), "parameters")) {
      if (!p->is_object()) return type_error(param + ".function.parameters", "an object", *p);
    }
  }
  return Status::ok();
}

// chat_template, chat_template_kwargs, tools, continue_final_message (vLLM). Tools are passed to
// the template for tool_choice "none" too, as vLLM does by default; tool_choice and the other
// tool fields are read by read_chat_extras (api/openai_extras.h).
Status read_template_fields(const json::object& obj, bool add_generation_prompt,
                            ChatTemplateFields& out) {
  if (const json::value* v = find_field(obj, "chat_template")) {
    if (!v->is_string()) return type_error("chat_template", "a string", *v);
    out.chat_template.emplace(v->get_string().data(), v->get_string().size());
  }
  if (const json::value* v = find_field(obj, "chat_template_kwargs")) {
    if (!v->is_object()) return type_error("chat_template_kwargs", "an object", *v);
    if (!v->get_object().empty()) out.kwargs_json = json::serialize(*v);
  }
  if (const json::value* v = find_field(obj, "tools")) {
    TURBINE_RETURN_IF_ERROR(check_tools(*v));
    if (!v->get_array().empty()) out.tools_json = json::serialize(*v);
  }
  TURBINE_RETURN_IF_ERROR(read_bool(obj, "continue_final_message", out.continue_final_message));
  if (out.continue_final_message && add_generation_prompt) {
    return invalid_argument(
        "continue_final_message and add_generation_prompt cannot both be true (set "
        "add_generation_prompt to false)",
        "continue_final_message");
  }
  return Status::ok();
}

Result<std::vector<ChatMessage>> read_messages(const json::object& obj) {
  const json::value* v = find_field(obj, "messages");
  if (v == nullptr) return invalid_argument("messages is required", "messages");
  if (!v->is_array()) return type_error("messages", "an array", *v);
  const json::array& arr = v->get_array();
  if (arr.empty())
    return invalid_argument("messages must contain at least one message", "messages");
  std::vector<ChatMessage> out;
  out.reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string param = "messages[" + std::to_string(i) + "]";
    if (!arr[i].is_object()) return type_error(param, "an object", arr[i]);
    const json::object& m = arr[i].get_object();
    ChatMessage msg;
    const json::value* role = find_field(m, "role");
    if (role == nullptr) return invalid_argument(param + ".role is required", param + ".role");
    if (!role->is_string()) return type_error(param + ".role", "a string", *role);
    msg.role.assign(role->get_string().data(), role->get_string().size());
    if (!is_known_role(msg.role)) {
      return invalid_argument(param +
                                  ".role must be one of system, user, assistant, tool, "
                                  "developer; got '" +
                                  msg.role + "'",
                              param + ".role");
    }
    const json::value* content = find_field(m, "content");
    if (content == nullptr) {
      if (msg.role != "assistant") {
        return invalid_argument(param + ".content is required", param + ".content");
      }
    } else if (content->is_string()) {
      msg.content.assign(content->get_string().data(), content->get_string().size());
    } else if (content->is_array()) {
      const json::array& parts = content->get_array();
      for (size_t k = 0; k < parts.size(); ++k) {
        const std::string pparam = param + ".content[" + std::to_string(k) + "]";
        if (!parts[k].is_object()) return type_error(pparam, "an object", parts[k]);
        const json::object& part = parts[k].get_object();
        const json::value* type = find_field(part, "type");
        if (type == nullptr || !type->is_string()) {
          return invalid_argument(pparam + ".type must be a string", pparam + ".type");
        }
        if (type->get_string() != "text") {
          return invalid_argument(pparam + ": content part type '" +
                                      std::string(type->get_string().c_str()) +
                                      "' is not supported (only 'text')",
                                  pparam + ".type");
        }
        const json::value* text = find_field(part, "text");
        if (text == nullptr || !text->is_string()) {
          return invalid_argument(pparam + ".text must be a string", pparam + ".text");
        }
        if (k > 0) msg.content += '\n';
        msg.content.append(text->get_string().data(), text->get_string().size());
      }
    } else {
      return type_error(param + ".content", "a string or an array of content parts", *content);
    }
    if (const json::value* name = find_field(m, "name")) {
      if (!name->is_string()) return type_error(param + ".name", "a string", *name);
      msg.name.emplace(name->get_string().data(), name->get_string().size());
    }
    if (const json::value* id = find_field(m, "tool_call_id")) {
      if (!id->is_string()) return type_error(param + ".tool_call_id", "a string", *id);
      msg.tool_call_id.emplace(id->get_string().data(), id->get_string().size());
    }
    if (const json::value* calls = find_field(m, "tool_calls")) {
      TURBINE_RETURN_IF_ERROR(check_tool_calls(*calls, msg.role, param + ".tool_calls"));
      if (!calls->get_array().empty()) msg.tool_calls_json = json::serialize(*calls);
    }
    if (const json::value* r = find_field(m, "reasoning_content")) {
      if (!r->is_string()) return type_error(param + ".reasoning_content", "a string", *r);
      msg.reasoning_content.emplace(r->get_string().data(), r->get_string().size());
    }
    out.push_back(std::move(msg));
  }
  return out;
}

}  // namespace

Result<CompletionRequest> parse_completion_request(std::string_view body) {
  TURBINE_ASSIGN_OR_RETURN(json::object obj, parse_json_object(body));
  CompletionRequest req;
  TURBINE_RETURN_IF_ERROR(read_model(obj, req.model, /*required=*/true));
  TURBINE_ASSIGN_OR_RETURN(req.prompts, read_prompt(obj));
  TURBINE_RETURN_IF_ERROR(read_sampling(obj, /*chat=*/false, req.sampling));
  if (const json::value* v = find_field(obj, "suffix")) {
    if (!v->is_string()) return type_error("suffix", "a string", *v);
    if (!v->get_string().empty()) return invalid_argument("suffix is not supported", "suffix");
  }
  TURBINE_ASSIGN_OR_RETURN(req.sampling.constraint, read_output_constraint(obj));
  return req;
}

Result<ChatRequest> parse_chat_request(std::string_view body) {
  TURBINE_ASSIGN_OR_RETURN(json::object obj, parse_json_object(body));
  ChatRequest req;
  TURBINE_RETURN_IF_ERROR(read_model(obj, req.model, /*required=*/true));
  TURBINE_ASSIGN_OR_RETURN(req.messages, read_messages(obj));
  TURBINE_RETURN_IF_ERROR(read_sampling(obj, /*chat=*/true, req.sampling));
  TURBINE_RETURN_IF_ERROR(read_bool(obj, "add_generation_prompt", req.add_generation_prompt));
  TURBINE_RETURN_IF_ERROR(
      read_template_fields(obj, req.add_generation_prompt, req.template_fields));
  TURBINE_RETURN_IF_ERROR(read_chat_extras(obj, req));
  TURBINE_ASSIGN_OR_RETURN(req.sampling.constraint, read_output_constraint(obj));
  return req;
}

Result<TokenizeRequest> parse_tokenize_request(std::string_view body) {
  TURBINE_ASSIGN_OR_RETURN(json::object obj, parse_json_object(body));
  TokenizeRequest req;
  TURBINE_RETURN_IF_ERROR(read_model(obj, req.model, /*required=*/false));
  if (find_field(obj, "messages") != nullptr) {
    req.is_chat = true;
    req.add_special_tokens = false;
    TURBINE_ASSIGN_OR_RETURN(req.messages, read_messages(obj));
    TURBINE_RETURN_IF_ERROR(read_bool(obj, "add_generation_prompt", req.add_generation_prompt));
    TURBINE_RETURN_IF_ERROR(
        read_template_fields(obj, req.add_generation_prompt, req.template_fields));
  } else {
    const json::value* v = find_field(obj, "prompt");
    if (v == nullptr) return invalid_argument("prompt or messages is required", "prompt");
    if (!v->is_string()) return type_error("prompt", "a string", *v);
    req.prompt.assign(v->get_string().data(), v->get_string().size());
  }
  TURBINE_RETURN_IF_ERROR(read_bool(obj, "add_special_tokens", req.add_special_tokens));
  return req;
}

Result<DetokenizeRequest> parse_detokenize_request(std::string_view body) {
  TURBINE_ASSIGN_OR_RETURN(json::object obj, parse_json_object(body));
  DetokenizeRequest req;
  TURBINE_RETURN_IF_ERROR(read_model(obj, req.model, /*required=*/false));
  const json::value* v = find_field(obj, "tokens");
  if (v == nullptr) return invalid_argument("tokens is required", "tokens");
  TURBINE_ASSIGN_OR_RETURN(req.tokens, as_token_array(*v, "tokens"));
  return req;
}

}  // namespace turbine::api
