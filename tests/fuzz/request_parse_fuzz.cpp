// libFuzzer target: request bodies and raw HTTP requests from untrusted clients must never crash
// the parsers, whatever the bytes. Also checks that whatever parses re-serializes to valid JSON.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/errors.h"
#include "api/json_writer.h"
#include "api/openai.h"
#include "http/request_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  using namespace turbine;

  if (auto r = api::parse_completion_request(input); !r.has_value()) {
    (void)api::error_json(r.status());
  } else {
    for (const auto& p : r->prompts) (void)api::detokenize_response(p.text);
  }
  if (auto r = api::parse_chat_request(input); r.has_value()) {
    for (const auto& m : r->messages) {
      if (!turbine::is_valid_utf8(m.content)) __builtin_trap();  // the JSON parser must validate
    }
  } else {
    (void)api::error_json(r.status());
  }
  (void)api::parse_tokenize_request(input);
  (void)api::parse_detokenize_request(input);

  // Raw bytes through the escaper must always give valid UTF-8.
  std::string escaped;
  api::append_json_string(escaped, input);
  if (!turbine::is_valid_utf8(escaped)) __builtin_trap();

  (void)http::parse_request(input, 1 << 16);
  return 0;
}
