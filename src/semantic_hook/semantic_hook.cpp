#include "semantic_hook/semantic_hook.h"

#include <algorithm>
#include <cctype>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

namespace turbine::semantic_hook {
namespace {

namespace json = boost::json;
using frontend::ParsedRequest;

std::string lower(std::string_view s) {
  std::string o(s);
  for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

// The parameters that shape the output, one canonical line each: part of the cache keys, so a
// hit needs the same ones. `stream` and stream_options are left out: a streamed request may be
// answered from a unary one and the other way round.
std::string params_fingerprint(const ParsedRequest& r) {
  const api::SamplingOptions& s = frontend::sampling_of(r);
  std::string f;
  auto line = [&f](std::string_view key, const std::string& value) {
    f += key;
    f += '=';
    f += value;
    f += '\n';
  };
  line("max_tokens", s.max_tokens ? std::to_string(*s.max_tokens) : "-");
  line("temperature", std::to_string(s.temperature));
  line("top_p", std::to_string(s.top_p));
  line("top_k", std::to_string(s.top_k));
  line("min_p", std::to_string(s.min_p));
  line("seed", s.seed ? std::to_string(*s.seed) : "-");
  line("presence_penalty", std::to_string(s.presence_penalty));
  line("frequency_penalty", std::to_string(s.frequency_penalty));
  line("repetition_penalty", std::to_string(s.repetition_penalty));
  std::string stops;
  for (const std::string& st : s.stop) stops += std::to_string(st.size()) + ":" + st;
  line("stop", stops);
  std::string stop_ids;
  for (int32_t id : s.stop_token_ids) stop_ids += std::to_string(id) + ",";
  line("stop_token_ids", stop_ids);
  line("ignore_eos", s.ignore_eos ? "1" : "0");
  line("min_tokens", std::to_string(s.min_tokens));
  line("skip_special_tokens", s.skip_special_tokens ? "1" : "0");
  line("n", std::to_string(s.n));
  line("logprobs", s.logprobs ? std::to_string(*s.logprobs) : "-");
  line("echo", s.echo ? "1" : "0");
  if (const auto* chat = std::get_if<api::ChatRequest>(&r)) {
    const api::ChatTemplateFields& t = chat->template_fields;
    line("add_generation_prompt", chat->add_generation_prompt ? "1" : "0");
    line("continue_final_message", t.continue_final_message ? "1" : "0");
    line("chat_template", t.chat_template.value_or("-"));
    line("chat_template_kwargs", t.kwargs_json);
    line("tools", t.tools_json);
    const api::ChatExtras& x = chat->extras;
    line("tool_choice",
         std::to_string(static_cast<int>(x.tool_choice.mode)) + ":" + x.tool_choice.function);
    line("output_format", std::to_string(static_cast<int>(x.output_format.type)) + ":" +
                              x.output_format.schema_json);
    line("reasoning_effort", x.reasoning_effort.value_or("-"));
    line("thinking", x.thinking ? (*x.thinking ? "1" : "0") : "-");
    // Message fields the stage does not see as text: tool calls and their ids, names.
    for (const api::ChatMessage& m : chat->messages) {
      line("message", m.name.value_or("") + "|" + m.tool_call_id.value_or("") + "|" +
                          m.tool_calls_json + "|" + m.reasoning_content.value_or(""));
    }
  }
  return f;
}

// `Authorization: Bearer KEY` -> KEY; the tenant of a request (tenant_header may override).
std::string api_key(const http::Headers& headers) {
  for (const auto& [name, value] : headers) {
    if (lower(name) != "authorization") continue;
    constexpr std::string_view kBearer = "bearer ";
    if (value.size() > kBearer.size() && lower(value.substr(0, kBearer.size())) == kBearer) {
      return value.substr(kBearer.size());
    }
    return value;
  }
  return {};
}

// Sets `key` in a JSON object text ("" = an empty object), keeping the other keys in order.
std::string with_kwarg(const std::string& object_json, const std::string& key, json::value v) {
  json::object o;
  if (!object_json.empty()) {
    boost::system::error_code ec;
    json::value parsed = json::parse(object_json, ec);
    if (!ec && parsed.is_object()) o = std::move(parsed.get_object());
  }
  o[key] = std::move(v);
  return json::serialize(o);
}

api::FinishReason finish_from(std::string_view name) {
  if (name == "length") return api::FinishReason::kLength;
  if (name == "tool_calls") return api::FinishReason::kToolCalls;
  if (name == "content_filter") return api::FinishReason::kContentFilter;
  return api::FinishReason::kStop;
}

frontend::CannedResponse canned_block(const semantic::ImmediateResponse& r) {
  frontend::CannedResponse c;
  api::ChoiceDelta d;
  d.content = r.message;
  d.finish = api::FinishReason::kContentFilter;
  c.choices.push_back(std::move(d));
  c.model = r.model;
  return c;
}

const char* path_of(semantic::OutcomeKind k) {
  switch (k) {
    case semantic::OutcomeKind::kPass: return "upstream";
    case semantic::OutcomeKind::kBlock: return "blocked";
    case semantic::OutcomeKind::kCacheHit: return "cache";
  }
  return "?";
}

// The `semantic` span: what was decided and every signal's score.
void annotate(trace::Span& span, const semantic::SemanticOutcome& out) {
  if (!span.recording()) return;
  span.set_attribute("semantic.response_path", std::string(path_of(out.kind)));
  span.set_attribute("semantic.model", out.model);
  span.set_attribute("semantic.model_rewritten", out.model_rewritten);
  if (!out.decision.empty()) {
    span.set_attribute("semantic.decision", out.decision);
    span.set_attribute("semantic.category", out.category);
    span.set_attribute("semantic.confidence", static_cast<double>(out.confidence));
  }
  std::string matched;
  for (const semantic::SignalScore& s : out.signals) {
    span.set_attribute("semantic.signal." + s.type + "." + s.name, static_cast<double>(s.score));
    if (s.matched) matched += (matched.empty() ? "" : ",") + s.type + ":" + s.name;
  }
  span.set_attribute("semantic.matched", matched);
}

}  // namespace

semantic::SemanticRequest to_semantic_request(const ParsedRequest& request,
                                              const frontend::HookContext& context) {
  semantic::SemanticRequest sr;
  sr.model = frontend::model_of(request);
  if (const auto* chat = std::get_if<api::ChatRequest>(&request)) {
    sr.endpoint = semantic::Endpoint::kChat;
    sr.messages.reserve(chat->messages.size());
    for (const api::ChatMessage& m : chat->messages) sr.messages.push_back({m.role, m.content});
  } else {
    sr.endpoint = semantic::Endpoint::kCompletions;
    // Token-id prompts have no text for the guards; they count as empty user messages.
    for (const api::PromptInput& p : std::get<api::CompletionRequest>(request).prompts) {
      sr.messages.push_back({"user", p.is_tokens ? std::string() : p.text});
    }
  }
  sr.tenant = api_key(context.headers);
  sr.headers.reserve(context.headers.size());
  for (const auto& [name, value] : context.headers) sr.headers.push_back({lower(name), value});
  const api::SamplingOptions& s = frontend::sampling_of(request);
  sr.stream = s.stream;
  sr.include_usage = s.include_usage;
  sr.params_fingerprint = params_fingerprint(request);
  return sr;
}

bool cacheable(const ParsedRequest& request) {
  const api::SamplingOptions& s = frontend::sampling_of(request);
  if (s.n != 1 || s.logprobs) return false;
  if (const auto* c = std::get_if<api::CompletionRequest>(&request)) {
    return c->prompts.size() == 1 && !c->prompts[0].is_tokens;
  }
  return true;
}

void apply_edits(const semantic::SemanticOutcome& out, ParsedRequest& request) {
  if (out.model_rewritten) frontend::model_of(request) = out.model;
  if (auto* c = std::get_if<api::CompletionRequest>(&request)) {
    for (const semantic::MessageEdit& e : out.redactions) {
      if (e.index < c->prompts.size()) c->prompts[e.index].text = e.text;
    }
    return;  // no messages, no template: system prompt and reasoning do not apply
  }
  auto& chat = std::get<api::ChatRequest>(request);
  // Redactions index the messages as the stage saw them: before the system prompt moves them.
  for (const semantic::MessageEdit& e : out.redactions) {
    if (e.index < chat.messages.size()) chat.messages[e.index].content = e.text;
  }
  if (out.system_prompt) {
    const bool replace = out.system_prompt->mode == semantic::SystemPromptMode::kReplace &&
                         !chat.messages.empty() && chat.messages.front().role == "system";
    if (replace) {
      chat.messages.front().content = out.system_prompt->text;
    } else {
      api::ChatMessage m;
      m.role = "system";
      m.content = out.system_prompt->text;
      chat.messages.insert(chat.messages.begin(), std::move(m));
    }
  }
  if (out.reasoning) {
    std::string& kwargs = chat.template_fields.kwargs_json;
    if (out.reasoning->type == semantic::ReasoningType::kChatTemplateKwargs) {
      kwargs = with_kwarg(kwargs, out.reasoning->parameter, json::value(out.reasoning->enabled));
    } else if (out.reasoning->enabled) {
      // gpt-oss-style templates read the effort as a template variable (vLLM passes it so).
      kwargs = with_kwarg(kwargs, out.reasoning->parameter, json::value(out.reasoning->effort));
      chat.extras.reasoning_effort = out.reasoning->effort;
    }
  }
}

frontend::CannedResponse canned_replay(const semantic::CachedResponse& cached) {
  frontend::CannedResponse c;
  c.model = cached.model;
  c.usage.prompt_tokens = cached.prompt_tokens;
  c.usage.completion_tokens = cached.completion_tokens;
  // Word-sized pieces (a word and the spaces after it), as a live stream would send them.
  const std::string& text = cached.content;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = at;
    while (end < text.size() && std::isspace(static_cast<unsigned char>(text[end]))) ++end;
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end]))) ++end;
    api::ChoiceDelta d;
    d.content = text.substr(at, end - at);
    c.choices.push_back(std::move(d));
    at = end;
  }
  api::ChoiceDelta last;
  last.finish = finish_from(cached.finish_reason);
  c.choices.push_back(std::move(last));
  return c;
}

SemanticHook::SemanticHook(std::shared_ptr<semantic::SemanticStage> stage)
    : stage_(std::move(stage)) {}

std::vector<std::string> SemanticHook::extra_model_names() const {
  return stage_->virtual_models();
}

bool SemanticHook::list_served_models() const {
  return stage_->list_real_models();
}

Result<frontend::HookOutcome> SemanticHook::on_request(ParsedRequest& request,
                                                       const frontend::HookContext& context) {
  trace::Span span;
  if (context.tracer != nullptr) {
    span = context.tracer->start_span("semantic", trace::SpanKind::kInternal, context.span);
  }
  const semantic::SemanticRequest sr = to_semantic_request(request, context);
  semantic::SemanticOutcome out = stage_->process(sr);
  annotate(span, out);

  frontend::HookOutcome h;
  h.headers.reserve(out.headers.size());
  for (semantic::Header& hd : out.headers) {
    if (hd.name == "content-type") continue;  // the response's own
    h.headers.emplace_back(std::move(hd.name), std::move(hd.value));
  }
  switch (out.kind) {
    case semantic::OutcomeKind::kBlock:
      if (context.endpoint == "chat_completions") {
        // The router's contract fixes these bytes (ids, texts, key order of the stream chunk).
        h.raw = frontend::RawResponse{out.response->http_status, out.response->content_type,
                                      std::move(out.response->body)};
      } else {
        h.respond = canned_block(*out.response);
      }
      return h;
    case semantic::OutcomeKind::kCacheHit: h.respond = canned_replay(*out.cached); return h;
    case semantic::OutcomeKind::kPass: break;
  }
  apply_edits(out, request);
  if (out.ticket && cacheable(request)) {
    // Stores the finished response; runs on the request's strand (a cache insert: a row copy,
    // any index build happens on the cache's own thread).
    h.on_finished = [stage = stage_, ticket = out.ticket](const frontend::FinishedResponse& r) {
      if (r.choices.size() != 1) return;
      const frontend::ChoiceOutput& c = r.choices[0];
      const bool complete =
          c.finish == api::FinishReason::kStop || c.finish == api::FinishReason::kLength;
      // A replay carries text only: outputs with tool calls or reasoning are not kept.
      if (!complete || !c.tool_calls.empty() || !c.reasoning.empty()) return;
      stage->store(*ticket,
                   semantic::CachedResponse{r.model, c.content, api::finish_reason_name(c.finish),
                                            r.usage.prompt_tokens, r.usage.completion_tokens});
    };
  }
  return h;
}

}  // namespace turbine::semantic_hook
