// OpenAI response, chunk and model-list builders (openai.h): compact JSON appended to one string,
// since chunks are built per token.
#include "api/openai.h"

#include <random>

#include "api/json_writer.h"

namespace turbine::api {
const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone: return nullptr;
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kToolCalls: return "tool_calls";
    case FinishReason::kContentFilter: return "content_filter";
  }
  return nullptr;
}

std::string make_request_id(std::string_view prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(prefix);
  id += '-';
  for (int i = 0; i < 2; ++i) {
    uint64_t r = rng();
    for (int k = 0; k < 16; ++k, r >>= 4) id.push_back(kHex[r & 0xF]);
  }
  return id;
}

namespace {

void append_key(std::string& out, std::string_view key) {
  out.push_back('"');
  out += key;  // keys are literals: no escaping needed
  out += "\":";
}

void append_finish(std::string& out, FinishReason reason) {
  append_key(out, "finish_reason");
  const char* name = finish_reason_name(reason);
  if (name == nullptr) {
    out += "null";
  } else {
    append_json_string(out, name);
  }
}

void append_head(std::string& out, const ResponseMeta& meta, std::string_view object) {
  out += "{\"id\":";
  append_json_string(out, meta.id);
  out += ",\"object\":";
  append_json_string(out, object);
  out += ",\"created\":";
  append_json_int(out, meta.created);
  out += ",\"model\":";
  append_json_string(out, meta.model);
}

void append_usage(std::string& out, const Usage& usage) {
  out += "\"usage\":{\"prompt_tokens\":";
  append_json_int(out, usage.prompt_tokens);
  out += ",\"completion_tokens\":";
  append_json_int(out, usage.completion_tokens);
  out += ",\"total_tokens\":";
  append_json_int(out, usage.prompt_tokens + usage.completion_tokens);
  if (usage.cached_tokens) {
    out += ",\"prompt_tokens_details\":{\"cached_tokens\":";
    append_json_int(out, *usage.cached_tokens);
    out += '}';
  }
  out += '}';
}

void append_bytes(std::string& out, std::string_view token) {
  out.push_back('[');
  for (size_t i = 0; i < token.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_json_int(out, static_cast<unsigned char>(token[i]));
  }
  out.push_back(']');
}

void append_completion_logprobs(std::string& out, const CompletionChoice& c) {
  append_key(out, "logprobs");
  if (!c.has_logprobs) {
    out += "null";
    return;
  }
  out += "{\"tokens\":[";
  for (size_t i = 0; i < c.logprobs.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_json_string(out, c.logprobs[i].token);
  }
  out += "],\"token_logprobs\":[";
  for (size_t i = 0; i < c.logprobs.size(); ++i) {
    if (i > 0) out.push_back(',');
    if (c.logprobs[i].null_logprob) {
      out += "null";
    } else {
      append_json_float(out, c.logprobs[i].logprob);
    }
  }
  out += "],\"top_logprobs\":[";
  for (size_t i = 0; i < c.logprobs.size(); ++i) {
    if (i > 0) out.push_back(',');
    if (c.logprobs[i].null_logprob) {
      out += "null";
      continue;
    }
    out.push_back('{');
    const auto& top = c.logprobs[i].top;
    for (size_t k = 0; k < top.size(); ++k) {
      if (k > 0) out.push_back(',');
      append_json_string(out, top[k].token);
      out.push_back(':');
      append_json_float(out, top[k].logprob);
    }
    out.push_back('}');
  }
  out += "],\"text_offset\":[";
  size_t offset = c.text_offset_start;
  for (size_t i = 0; i < c.logprobs.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_json_int(out, static_cast<int64_t>(offset));
    offset += c.logprobs[i].token.size();
  }
  out += "]}";
}

void append_chat_logprobs(std::string& out, const ChatChoice& c) {
  append_key(out, "logprobs");
  if (!c.has_logprobs) {
    out += "null";
    return;
  }
  out += "{\"content\":[";
  for (size_t i = 0; i < c.logprobs.size(); ++i) {
    const TokenLogprob& t = c.logprobs[i];
    if (i > 0) out.push_back(',');
    out += "{\"token\":";
    append_json_string(out, t.token);
    out += ",\"logprob\":";
    append_json_float(out, t.logprob);
    out += ",\"bytes\":";
    append_bytes(out, t.token);
    out += ",\"top_logprobs\":[";
    for (size_t k = 0; k < t.top.size(); ++k) {
      if (k > 0) out.push_back(',');
      out += "{\"token\":";
      append_json_string(out, t.top[k].token);
      out += ",\"logprob\":";
      append_json_float(out, t.top[k].logprob);
      out += ",\"bytes\":";
      append_bytes(out, t.top[k].token);
      out.push_back('}');
    }
    out += "]}";
  }
  out += "]}";
}

// Closes a stream chunk: "usage": null first when the stream ends with a usage chunk.
void append_chunk_tail(std::string& out, const ResponseMeta& meta) {
  if (meta.null_usage_in_chunks) out += ",\"usage\":null";
  out.push_back('}');
}

void append_completion_choice(std::string& out, const CompletionChoice& c) {
  out += "{\"index\":";
  append_json_int(out, c.index);
  out += ",\"text\":";
  append_json_string(out, c.text);
  out.push_back(',');
  append_completion_logprobs(out, c);
  out.push_back(',');
  append_finish(out, c.finish_reason);
  out.push_back('}');
}

}  // namespace

std::string completion_response(const ResponseMeta& meta, std::span<const CompletionChoice> choices,
                                const Usage& usage) {
  std::string out;
  out.reserve(256);
  append_head(out, meta, "text_completion");
  out += ",\"choices\":[";
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_completion_choice(out, choices[i]);
  }
  out += "],";
  append_usage(out, usage);
  out.push_back('}');
  return out;
}

std::string completion_chunk(const ResponseMeta& meta, const CompletionChoice& choice) {
  std::string out;
  out.reserve(192);
  append_head(out, meta, "text_completion");
  out += ",\"choices\":[";
  append_completion_choice(out, choice);
  out += ']';
  append_chunk_tail(out, meta);
  return out;
}

std::string completion_usage_chunk(const ResponseMeta& meta, const Usage& usage) {
  std::string out;
  append_head(out, meta, "text_completion");
  out += ",\"choices\":[],";
  append_usage(out, usage);
  out.push_back('}');
  return out;
}

std::string chat_response(const ResponseMeta& meta, std::span<const ChatChoice> choices,
                          const Usage& usage) {
  std::string out;
  out.reserve(256);
  append_head(out, meta, "chat.completion");
  out += ",\"choices\":[";
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChatChoice& c = choices[i];
    if (i > 0) out.push_back(',');
    out += "{\"index\":";
    append_json_int(out, c.index);
    out += ",\"message\":{\"role\":\"assistant\",\"content\":";
    if (c.content.empty() && !c.tool_calls_json.empty()) {
      out += "null";
    } else {
      append_json_string(out, c.content);
    }
    if (!c.reasoning.empty()) {
      out += ",\"reasoning_content\":";
      append_json_string(out, c.reasoning);
    }
    if (!c.tool_calls_json.empty()) {
      out += ",\"tool_calls\":";
      out += c.tool_calls_json;
    }
    out += "},";
    append_chat_logprobs(out, c);
    out.push_back(',');
    append_finish(out, c.finish_reason);
    out.push_back('}');
  }
  out += "],";
  append_usage(out, usage);
  out.push_back('}');
  return out;
}

std::string chat_role_chunk(const ResponseMeta& meta, int index) {
  std::string out;
  out.reserve(160);
  append_head(out, meta, "chat.completion.chunk");
  out += ",\"choices\":[{\"index\":";
  append_json_int(out, index);
  out +=
      ",\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,"
      "\"finish_reason\":null}]";
  append_chunk_tail(out, meta);
  return out;
}

std::string chat_chunk(const ResponseMeta& meta, const ChatChoice& choice) {
  std::string out;
  out.reserve(192);
  append_head(out, meta, "chat.completion.chunk");
  out += ",\"choices\":[{\"index\":";
  append_json_int(out, choice.index);
  out += ",\"delta\":{";
  const bool other = !choice.reasoning.empty() || !choice.tool_calls_json.empty();
  bool first = true;
  if (!choice.content.empty() || (choice.finish_reason == FinishReason::kNone && !other)) {
    out += "\"content\":";
    append_json_string(out, choice.content);
    first = false;
  }
  if (!choice.reasoning.empty()) {
    out += first ? "\"reasoning_content\":" : ",\"reasoning_content\":";
    append_json_string(out, choice.reasoning);
    first = false;
  }
  if (!choice.tool_calls_json.empty()) {
    out += first ? "\"tool_calls\":" : ",\"tool_calls\":";
    out += choice.tool_calls_json;
  }
  out += "},";
  append_chat_logprobs(out, choice);
  out.push_back(',');
  append_finish(out, choice.finish_reason);
  out += "}]";
  append_chunk_tail(out, meta);
  return out;
}

std::string chat_usage_chunk(const ResponseMeta& meta, const Usage& usage) {
  std::string out;
  append_head(out, meta, "chat.completion.chunk");
  out += ",\"choices\":[],";
  append_usage(out, usage);
  out.push_back('}');
  return out;
}

namespace {
void append_model_card(std::string& out, const ModelCard& m) {
  out += "{\"id\":";
  append_json_string(out, m.id);
  out += ",\"object\":\"model\",\"created\":";
  append_json_int(out, m.created);
  out += ",\"owned_by\":";
  append_json_string(out, m.owned_by);
  out += ",\"max_model_len\":";
  append_json_int(out, m.max_model_len);
  out.push_back('}');
}
}  // namespace

std::string models_response(std::span<const ModelCard> models) {
  std::string out = "{\"object\":\"list\",\"data\":[";
  for (size_t i = 0; i < models.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_model_card(out, models[i]);
  }
  out += "]}";
  return out;
}

std::string model_response(const ModelCard& model) {
  std::string out;
  append_model_card(out, model);
  return out;
}

std::string tokenize_response(std::span<const int32_t> tokens, int64_t max_model_len) {
  std::string out = "{\"count\":";
  append_json_int(out, static_cast<int64_t>(tokens.size()));
  out += ",\"max_model_len\":";
  append_json_int(out, max_model_len);
  out += ",\"tokens\":[";
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_json_int(out, tokens[i]);
  }
  out += "]}";
  return out;
}

std::string detokenize_response(std::string_view text) {
  std::string out = "{\"prompt\":";
  append_json_string(out, text);
  out.push_back('}');
  return out;
}

std::string sse_event(std::string_view json) {
  std::string out;
  out.reserve(json.size() + 8);
  out += "data: ";
  out += json;
  out += "\n\n";
  return out;
}

}  // namespace turbine::api
