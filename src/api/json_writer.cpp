#include "api/json_writer.h"

#include "common/utf8.h"

#include <charconv>
#include <cmath>

namespace turbine::api {
namespace {}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t i = 0;
  size_t run_start = 0;  // start of the pending run of bytes copied verbatim
  const auto flush = [&](size_t end) { out.append(s.data() + run_start, end - run_start); };
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const size_t len = utf8_valid_sequence_length(s, i);
      if (len != 0) {
        i += len;
        continue;
      }
      flush(i);
      out += "\xEF\xBF\xBD";
      run_start = ++i;
      continue;
    }
    flush(i);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
    }
    run_start = ++i;
  }
  flush(i);
  out.push_back('"');
}

void append_json_int(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

void append_json_float(std::string& out, float v) {
  if (!std::isfinite(v)) v = -9999.0f;
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  std::string_view text(buf, static_cast<size_t>(end - buf));
  out += text;
  // "3" is a valid JSON number but clients in typed languages expect a float for logprobs.
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

}  // namespace turbine::api
