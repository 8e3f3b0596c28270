// Incremental decoder of an OpenAI streaming response body (Server-Sent Events).
//
// Bytes go in as they arrive, in pieces of any size; complete events come out. An event counts as
// a content chunk when it carries generated text: choices[0].delta.content (or
// reasoning_content, or tool_calls) for chat, choices[0].text for completions. The role-only first
// chunk of chat streams and the usage-only last chunk are not content chunks. Owned by one
// request's coroutine; not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace turbine::bench {

struct SseEvent {
  bool done = false;         // data: [DONE]
  bool has_content = false;  // generated text in this event
  bool has_usage = false;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  std::string error;  // {"error": ...} in the stream, or a payload that is not JSON
};

class SseDecoder {
 public:
  SseDecoder();
  ~SseDecoder();
  SseDecoder(const SseDecoder&) = delete;
  SseDecoder& operator=(const SseDecoder&) = delete;

  // Appends `bytes` and pushes every event completed by them onto `out` (not cleared).
  void feed(std::string_view bytes, std::vector<SseEvent>& out);

 private:
  void handle_line(std::string_view line, std::vector<SseEvent>& out);
  void dispatch(std::vector<SseEvent>& out);

  std::string pending_;  // bytes of an incomplete line
  std::string data_;     // data: lines of the current event, joined by '\n'
  bool has_data_ = false;
  struct Json;
  std::unique_ptr<Json> json_;  // reused parser state
};

// Decodes one data payload (exposed for tests).
SseEvent decode_sse_payload(std::string_view payload);

}  // namespace turbine::bench
