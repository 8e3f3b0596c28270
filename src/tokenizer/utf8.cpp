#include "tokenizer/utf8.h"

#include <cstdint>

namespace turbine::tokenizer {
namespace {

// Length of the sequence a lead byte announces and the allowed range of the byte after it
// (Unicode Table 3-7); 0 for bytes that can never start a sequence.
struct LeadInfo {
  int length;
  uint8_t second_lo;
  uint8_t second_hi;
};

LeadInfo lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};  // excludes UTF-16 surrogates
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};  // nothing above U+10FFFF
  return {0, 0, 0};
}

}  // namespace

size_t append_sanitized_utf8(std::string_view bytes, std::string& out, bool final_chunk) {
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const auto b = static_cast<uint8_t>(bytes[i]);
    const LeadInfo info = lead_info(b);
    if (info.length == 1) {
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    if (info.length == 0) {
      out.append(kReplacementChar);
      ++i;
      continue;
    }
    // Count how many bytes after the lead are valid continuations.
    int good = 1;
    while (good < info.length && i + good < n) {
      const auto c = static_cast<uint8_t>(bytes[i + good]);
      const uint8_t lo = good == 1 ? info.second_lo : 0x80;
      const uint8_t hi = good == 1 ? info.second_hi : 0xBF;
      if (c < lo || c > hi) break;
      ++good;
    }
    if (good == info.length) {
      out.append(bytes.substr(i, good));
      i += good;
    } else if (i + good == n && !final_chunk) {
      return n - i;  // a prefix of a valid sequence: wait for more bytes
    } else {
      out.append(kReplacementChar);
      i += good;
    }
  }
  return 0;
}

std::string sanitize_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  append_sanitized_utf8(bytes, out, /*final_chunk=*/true);
  return out;
}

}  // namespace turbine::tokenizer
