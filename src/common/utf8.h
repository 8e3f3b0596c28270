// Strict UTF-8 (Unicode Table 3-7: no overlongs, no surrogates, nothing above U+10FFFF), shared by
// the JSON writer, the tokenizers and the chat-template renderer.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace turbine {

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 if there is none.
size_t utf8_valid_sequence_length(std::string_view s, size_t i);

bool is_valid_utf8(std::string_view s);

// Appends the UTF-8 encoding of `cp` (the caller guarantees a valid scalar value).
void append_code_point(std::string& out, char32_t cp);

}  // namespace turbine
