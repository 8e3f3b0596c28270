#include "semantic/responses.h"

#include <cstdio>

#include "semantic/text.h"

namespace turbine::semantic {
namespace {

constexpr const char* kJson = "application/json";
constexpr const char* kSse = "text/event-stream";

// The contract's unary block body.
std::string block_unary(std::string_view id, int64_t created, std::string_view model,
                        std::string_view content) {
  std::string o = "{\"id\":";
  append_go_json_string(o, id);
  o += ",\"object\":\"chat.completion\",\"created\":" + std::to_string(created) + ",\"model\":";
  append_go_json_string(o, model);
  o += ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":";
  append_go_json_string(o, content);
  o += "},\"finish_reason\":\"content_filter\"}],"
       "\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0}}";
  return o;
}

// The contract's single stream chunk (sorted keys, as Go marshals a map).
std::string block_chunk(std::string_view id, int64_t created, std::string_view model,
                        std::string_view content) {
  std::string o = "{\"choices\":[{\"delta\":{\"content\":";
  append_go_json_string(o, content);
  o += ",\"role\":\"assistant\"},\"finish_reason\":\"content_filter\",\"index\":0}],\"created\":" +
       std::to_string(created) + ",\"id\":";
  append_go_json_string(o, id);
  o += ",\"model\":";
  append_go_json_string(o, model);
  o += ",\"object\":\"chat.completion.chunk\"}";
  return o;
}

std::string frame(std::string_view json) {
  return "data: " + std::string(json) + "\n\n";
}

ImmediateResponse block_response(std::string_view id, int64_t created, std::string_view model,
                                 std::string_view content, bool stream) {
  ImmediateResponse r;
  if (stream) {
    r.content_type = kSse;
    r.frames = {frame(block_chunk(id, created, model, content)), "data: [DONE]\n\n"};
    r.body = r.frames[0] + r.frames[1];
  } else {
    r.content_type = kJson;
    r.body = block_unary(id, created, model, content);
  }
  r.headers.push_back({"content-type", r.content_type});
  r.message = std::string(content);
  r.model = std::string(model);
  return r;
}

// Like api/openai.cpp's append_head.
std::string head(std::string_view id, std::string_view object, int64_t created,
                 std::string_view model) {
  std::string o = "{\"id\":";
  append_go_json_string(o, id);
  o += ",\"object\":\"";
  o += object;
  o += "\",\"created\":" + std::to_string(created) + ",\"model\":";
  append_go_json_string(o, model);
  return o;
}

std::string usage_json(const CachedResponse& r) {
  return "\"usage\":{\"prompt_tokens\":" + std::to_string(r.prompt_tokens) +
         ",\"completion_tokens\":" + std::to_string(r.completion_tokens) +
         ",\"total_tokens\":" + std::to_string(r.prompt_tokens + r.completion_tokens) + "}";
}

std::string finish_json(std::string_view reason) {
  return reason.empty() ? "null" : go_json_string(reason);
}

// Pieces of about a word each (a word plus its following spaces), like a tokenizer's deltas.
std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\n') ++j;
    while (j < s.size() && (s[j] == ' ' || s[j] == '\n')) ++j;
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

std::string pii_block_message(std::string_view model, const std::vector<std::string>& labels) {
  // Go's %v of a []string: "[A B]".
  std::string list = "[";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) list += ' ';
    list += labels[i];
  }
  list += ']';
  return "I cannot process this request as it contains personally identifiable information (" +
         list + ") that is not allowed for the '" + std::string(model) +
         "' model according to the configured privacy policy. Please remove any sensitive "
         "information and try again.";
}

std::string jailbreak_block_message(std::string_view type, float confidence) {
  char conf[32];
  std::snprintf(conf, sizeof(conf), "%.3f", static_cast<double>(confidence));
  return "I cannot process this request as it appears to contain a potential jailbreak attempt "
         "(type: " +
         std::string(type) + ", confidence: " + conf +
         "). Please rephrase your request in a way that complies with our usage policies.";
}

ImmediateResponse pii_block_response(std::string_view model,
                                     const std::vector<std::string>& denied_labels, bool stream,
                                     int64_t now_unix) {
  std::string id = "chatcmpl-pii-violation-" + std::to_string(now_unix);
  ImmediateResponse r =
      block_response(id, now_unix, model, pii_block_message(model, denied_labels), stream);
  std::string types;
  for (size_t i = 0; i < denied_labels.size(); ++i) {
    if (i > 0) types += ',';
    types += denied_labels[i];
  }
  r.headers.push_back({header::kPiiViolation, "true"});
  r.headers.push_back({header::kPiiTypes, types});
  return r;
}

ImmediateResponse jailbreak_block_response(std::string_view type, float confidence, bool stream,
                                           int64_t now_unix) {
  std::string id = "chatcmpl-jailbreak-blocked-" + std::to_string(now_unix);
  ImmediateResponse r = block_response(id, now_unix, "security-filter",
                                       jailbreak_block_message(type, confidence), stream);
  char conf[32];
  std::snprintf(conf, sizeof(conf), "%.3f", static_cast<double>(confidence));
  r.headers.push_back({header::kJailbreakBlocked, "true"});
  r.headers.push_back({header::kJailbreakType, std::string(type)});
  r.headers.push_back({header::kJailbreakConfidence, conf});
  return r;
}

ImmediateResponse cache_replay_response(const CachedResponse& c, Endpoint endpoint, bool stream,
                                        bool include_usage, std::string_view id, int64_t now_unix) {
  ImmediateResponse r;
  bool chat = endpoint == Endpoint::kChat;
  const char* object = chat ? "chat.completion" : "text_completion";
  if (!stream) {
    r.content_type = kJson;
    std::string o = head(id, object, now_unix, c.model) + ",\"choices\":[{\"index\":0,";
    if (chat) {
      o += "\"message\":{\"role\":\"assistant\",\"content\":" + go_json_string(c.content) + "},";
    } else {
      o += "\"text\":" + go_json_string(c.content) + ",";
    }
    o += "\"logprobs\":null,\"finish_reason\":" + finish_json(c.finish_reason) + "}]," +
         usage_json(c) + "}";
    r.body = std::move(o);
    r.headers.push_back({"content-type", r.content_type});
    return r;
  }
  r.content_type = kSse;
  const char* chunk_object = chat ? "chat.completion.chunk" : "text_completion";
  std::string h = head(id, chunk_object, now_unix, c.model);
  if (chat) {
    r.frames.push_back(frame(h + ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                                 "\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}"));
  }
  for (std::string_view piece : split_words(c.content)) {
    std::string body = chat ? "\"delta\":{\"content\":" + go_json_string(piece) + "}"
                            : "\"text\":" + go_json_string(piece);
    r.frames.push_back(frame(h + ",\"choices\":[{\"index\":0," + body +
                             ",\"logprobs\":null,\"finish_reason\":null}]}"));
  }
  std::string last_body = chat ? "\"delta\":{}" : "\"text\":\"\"";
  r.frames.push_back(frame(h + ",\"choices\":[{\"index\":0," + last_body +
                           ",\"logprobs\":null,\"finish_reason\":" + finish_json(c.finish_reason) +
                           "}]}"));
  if (include_usage) r.frames.push_back(frame(h + ",\"choices\":[]," + usage_json(c) + "}"));
  r.frames.push_back("data: [DONE]\n\n");
  for (const std::string& f : r.frames) r.body += f;
  r.headers.push_back({"content-type", r.content_type});
  return r;
}

}  // namespace turbine::semantic
