#include "bench/sse.h"

#include <boost/json.hpp>

namespace turbine::bench {
namespace json = boost::json;
namespace {

bool non_empty_string(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() && !v->as_string().empty();
}

int64_t to_int(const json::value* v) {
  if (!v) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  if (v->is_double()) return static_cast<int64_t>(v->as_double());
  return 0;
}

void decode_value(const json::value& v, SseEvent& ev) {
  if (!v.is_object()) {
    ev.error = "stream event is not a JSON object";
    return;
  }
  const json::object& o = v.as_object();
  if (const json::value* err = o.if_contains("error")) {
    const json::value* msg = err->is_object() ? err->as_object().if_contains("message") : nullptr;
    ev.error = msg && msg->is_string() ? std::string(msg->as_string()) : json::serialize(*err);
    return;
  }
  if (const json::value* choices = o.if_contains("choices"); choices && choices->is_array()) {
    for (const json::value& c : choices->as_array()) {
      if (!c.is_object()) continue;
      const json::object& co = c.as_object();
      if (non_empty_string(co, "text")) ev.has_content = true;
      if (const json::value* d = co.if_contains("delta"); d && d->is_object()) {
        const json::object& delta = d->as_object();
        if (non_empty_string(delta, "content") || non_empty_string(delta, "reasoning_content") ||
            non_empty_string(delta, "reasoning")) {
          ev.has_content = true;
        }
        if (const json::value* t = delta.if_contains("tool_calls");
            t && t->is_array() && !t->as_array().empty()) {
          ev.has_content = true;
        }
      }
    }
  }
  if (const json::value* u = o.if_contains("usage"); u && u->is_object()) {
    ev.has_usage = true;
    ev.prompt_tokens = to_int(u->as_object().if_contains("prompt_tokens"));
    ev.completion_tokens = to_int(u->as_object().if_contains("completion_tokens"));
  }
}

}  // namespace

struct SseDecoder::Json {
  unsigned char buffer[8192];
  json::parser parser;
};

SseDecoder::SseDecoder() : json_(std::make_unique<Json>()) {}
SseDecoder::~SseDecoder() = default;

SseEvent decode_sse_payload(std::string_view payload) {
  SseEvent ev;
  if (payload == "[DONE]") {
    ev.done = true;
    return ev;
  }
  boost::system::error_code ec;
  json::value v = json::parse(payload, ec);
  if (ec) {
    ev.error = "stream event is not JSON: " + std::string(payload.substr(0, 120));
    return ev;
  }
  decode_value(v, ev);
  return ev;
}

void SseDecoder::feed(std::string_view bytes, std::vector<SseEvent>& out) {
  // Fast path: whole lines inside `bytes` are handled in place; only a trailing partial line is
  // copied into pending_.
  if (!pending_.empty()) {
    size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      pending_.append(bytes);
      return;
    }
    pending_.append(bytes.substr(0, nl));
    std::string line = std::move(pending_);
    pending_.clear();
    handle_line(line, out);
    bytes.remove_prefix(nl + 1);
  }
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      pending_.assign(bytes);
      return;
    }
    handle_line(bytes.substr(0, nl), out);
    bytes.remove_prefix(nl + 1);
  }
}

void SseDecoder::handle_line(std::string_view line, std::vector<SseEvent>& out) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) {
    dispatch(out);
    return;
  }
  if (line.front() == ':') return;  // comment / keep-alive
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value =
      colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field != "data") return;  // event:, id:, retry: carry nothing we measure
  if (has_data_) data_.push_back('\n');
  data_.append(value);
  has_data_ = true;
}

void SseDecoder::dispatch(std::vector<SseEvent>& out) {
  if (!has_data_) return;
  SseEvent ev;
  if (data_ == "[DONE]") {
    ev.done = true;
  } else {
    // A monotonic resource over a stack-sized buffer: chunk JSON is small, so parsing allocates
    // nothing on the per-token path.
    json::monotonic_resource mr(json_->buffer, sizeof(json_->buffer));
    json_->parser.reset(&mr);
    boost::system::error_code ec;
    json_->parser.write(data_, ec);
    if (ec) {
      ev.error = "stream event is not JSON: " + data_.substr(0, 120);
    } else {
      json::value v = json_->parser.release();
      decode_value(v, ev);
    }
  }
  data_.clear();
  has_data_ = false;
  out.push_back(std::move(ev));
}

}  // namespace turbine::bench
