// UTF-8 helpers shared by the tokenizers and the incremental detokenizer.
//
// Pure functions, no state: safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/utf8.h"

namespace turbine::tokenizer {

using turbine::append_code_point;
using turbine::is_valid_utf8;

// U+FFFD REPLACEMENT CHARACTER, what ill-formed input turns into.
inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

// Appends `bytes` to `out` as well-formed UTF-8. Each maximal ill-formed subsequence (Unicode's
// "maximal subpart" rule, as browsers and Python use) becomes one U+FFFD. A trailing sequence that
// is well-formed so far but incomplete is not appended; its length is returned so that a streaming
// caller can keep those bytes and retry once more arrive. With `final_chunk` that tail becomes one
// U+FFFD instead and the result is always 0.
size_t append_sanitized_utf8(std::string_view bytes, std::string& out, bool final_chunk = false);

// Whole-string convenience: ill-formed and truncated sequences become U+FFFD.
std::string sanitize_utf8(std::string_view bytes);

// Decodes the character at `s[i]` and advances `i` past it. `s` must be well-formed UTF-8.
inline uint32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  if (b0 < 0xE0) {
    const uint32_t cp = ((b0 & 0x1Fu) << 6) | (static_cast<uint8_t>(s[i + 1]) & 0x3Fu);
    i += 2;
    return cp;
  }
  if (b0 < 0xF0) {
    const uint32_t cp = ((b0 & 0x0Fu) << 12) | ((static_cast<uint8_t>(s[i + 1]) & 0x3Fu) << 6) |
                        (static_cast<uint8_t>(s[i + 2]) & 0x3Fu);
    i += 3;
    return cp;
  }
  const uint32_t cp = ((b0 & 0x07u) << 18) | ((static_cast<uint8_t>(s[i + 1]) & 0x3Fu) << 12) |
                      ((static_cast<uint8_t>(s[i + 2]) & 0x3Fu) << 6) |
                      (static_cast<uint8_t>(s[i + 3]) & 0x3Fu);
  i += 4;
  return cp;
}

// Bytes of the UTF-8 sequence that starts with lead byte `b` (1 for continuation bytes).
inline size_t utf8_sequence_length(uint8_t b) {
  return b < 0xC0 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

// Bytes of `s` that are not continuation bytes (its code points when well-formed).
inline size_t count_chars(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  return n;
}

}  // namespace turbine::tokenizer
