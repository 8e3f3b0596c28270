#include "frontend/chat_prompt.h"

#include <spdlog/spdlog.h>

#include <optional>
#include <string_view>

namespace turbine::frontend {

std::string ChatPrompt::render_fallback(const std::vector<api::ChatMessage>& messages,
                                        bool add_generation_prompt) {
  std::string out;
  for (const auto& m : messages) {
    out += m.role;
    out += ": ";
    out += m.content;
    out += '\n';
  }
  if (add_generation_prompt) out += "assistant:";
  return out;
}

namespace {

using OrderedJson = nlohmann::ordered_json;

// JSON text that the API layer already validated; a failure here is a bug, reported as such.
Result<OrderedJson> parse_validated(const std::string& text, const char* what) {
  OrderedJson j = OrderedJson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return internal_error(std::string(what) + " is not valid JSON");
  return j;
}

// vLLM hands templates tool-call arguments as objects (transformers' convention), not the JSON
// text OpenAI clients send; text that does not parse stays text.
void parse_tool_call_arguments(OrderedJson& calls) {
  for (OrderedJson& call : calls) {
    if (!call.is_object()) continue;
    auto fn = call.find("function");
    if (fn == call.end() || !fn->is_object()) continue;
    auto args = fn->find("arguments");
    if (args == fn->end() || !args->is_string()) continue;
    OrderedJson parsed = OrderedJson::parse(args->get_ref<const std::string&>(), nullptr, false);
    if (!parsed.is_discarded()) *args = std::move(parsed);
  }
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view strip_left(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  return s;
}

std::string_view strip(std::string_view s) {
  s = strip_left(s);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// transformers' continue_final_message: keep the text up to the last occurrence of the final
// message's content (with its leading white space, and its trailing white space when the template
// kept it).
Result<std::string> cut_after_final_message(std::string rendered, const OrderedJson& messages) {
  const OrderedJson* content = nullptr;
  if (messages.is_array() && !messages.empty() && messages.back().is_object()) {
    auto it = messages.back().find("content");
    if (it != messages.back().end() && it->is_string()) content = &*it;
  }
  if (content == nullptr) {
    return invalid_argument("continue_final_message needs a final message with text content",
                            "continue_final_message");
  }
  const std::string& final_text = content->get_ref<const std::string&>();
  const std::string_view stripped = strip(final_text);
  const size_t at = rendered.rfind(stripped);
  if (at == std::string::npos) {
    return invalid_argument(
        "continue_final_message is set but the final message does not appear in the rendered "
        "chat template",
        "continue_final_message");
  }
  const size_t n_left = strip_left(final_text).size();
  if (std::string_view(rendered).substr(at, n_left) == final_text) {
    rendered.resize(at + n_left);
  } else {
    rendered.resize(at + stripped.size());
  }
  return rendered;
}

}  // namespace

Result<std::string> render_chat_template(const chat::ChatTemplate& tmpl,
                                         const ChatTemplateInputs& inputs,
                                         const std::string& bos_token,
                                         const std::string& eos_token) {
  auto text =
      chat::apply_chat_template(tmpl, inputs.messages, inputs.tools, inputs.add_generation_prompt,
                                bos_token, eos_token, inputs.kwargs);
  if (!text) {
    const Status& st = text.status();
    return invalid_argument("the chat template rejected the messages: " + st.message(),
                            st.field().empty() ? "messages" : st.field());
  }
  if (!inputs.continue_final_message) return std::move(*text);
  return cut_after_final_message(std::move(*text), inputs.messages);
}

Result<RenderedPrompt> ChatPrompt::render(const std::vector<api::ChatMessage>& messages,
                                          bool add_generation_prompt,
                                          const api::ChatTemplateFields& fields) const {
  if (messages.empty()) return invalid_argument("messages must not be empty", "messages");
  const chat::ChatTemplate* tmpl = template_.get();
  std::optional<chat::ChatTemplate> own;  // the request's template, parsed per request as vLLM
  if (fields.chat_template) {
    auto parsed = chat::ChatTemplate::parse(*fields.chat_template);
    if (!parsed) {
      return invalid_argument("chat_template does not parse: " + parsed.status().message(),
                              "chat_template");
    }
    own.emplace(std::move(*parsed));
    tmpl = &*own;
  }
  if (tmpl == nullptr) {
    std::string text = render_fallback(messages, add_generation_prompt);
    if (fields.continue_final_message && !text.empty() && text.back() == '\n') text.pop_back();
    return RenderedPrompt{std::move(text), true};
  }
  ChatTemplateInputs inputs;
  inputs.add_generation_prompt = add_generation_prompt;
  inputs.continue_final_message = fields.continue_final_message;
  // Key order matters to templates that serialise messages (tojson), so keep insertion order.
  for (const auto& m : messages) {
    OrderedJson j;
    j["role"] = m.role;
    j["content"] = m.content;
    if (m.name) j["name"] = *m.name;
    if (m.reasoning_content) j["reasoning_content"] = *m.reasoning_content;
    if (!m.tool_calls_json.empty()) {
      TURBINE_ASSIGN_OR_RETURN(OrderedJson calls, parse_validated(m.tool_calls_json, "tool_calls"));
      parse_tool_call_arguments(calls);
      j["tool_calls"] = std::move(calls);
    }
    if (m.tool_call_id) j["tool_call_id"] = *m.tool_call_id;
    inputs.messages.push_back(std::move(j));
  }
  if (!fields.tools_json.empty()) {
    TURBINE_ASSIGN_OR_RETURN(inputs.tools, parse_validated(fields.tools_json, "tools"));
  }
  if (!fields.kwargs_json.empty()) {
    TURBINE_ASSIGN_OR_RETURN(inputs.kwargs,
                             parse_validated(fields.kwargs_json, "chat_template_kwargs"));
  }
  TURBINE_ASSIGN_OR_RETURN(std::string text, render_chat_template(*tmpl, inputs, bos_, eos_));
  // The template writes BOS itself, as in vLLM's chat path (add_special_tokens=false).
  return RenderedPrompt{std::move(text), false};
}

ChatPrompt make_chat_prompt(const model::VocabSpec& vocab, const tokenizer::Tokenizer& tokenizer) {
  if (vocab.chat_template.empty()) return ChatPrompt{};
  auto parsed = chat::ChatTemplate::parse(vocab.chat_template);
  if (!parsed) {
    spdlog::warn("the model's chat template does not parse ({}); using the plain fallback",
                 parsed.status().message());
    return ChatPrompt{};
  }
  const int32_t bos = tokenizer.bos_id();
  const int32_t eos = tokenizer.eos_id();
  return ChatPrompt(std::make_shared<const chat::ChatTemplate>(std::move(*parsed)),
                    bos >= 0 ? tokenizer.piece(bos) : "", eos >= 0 ? tokenizer.piece(eos) : "");
}

}  // namespace turbine::frontend
