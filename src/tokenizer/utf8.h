// UTF-8 helpers shared by the tokenizers and the incremental detokenizer.
//
// Pure functions, no state: safe from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace turbine::tokenizer {

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

}  // namespace turbine::tokenizer
