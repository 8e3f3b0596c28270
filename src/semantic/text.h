// Text helpers of the semantic stage: JSON string escaping as Go's encoding/json writes it (the
// block bodies are byte-compatible with the semantic router's), the cache's literal guard and
// request fingerprints.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace turbine::semantic {

// Appends `s` as a quoted JSON string exactly as Go's json.Marshal does: \" \\ \n \r \t,
// other controls as \u00XX, '<' '>' '&' as \u003c \u003e \u0026, U+2028/2029 escaped, invalid
// UTF-8 bytes as \ufffd.
void append_go_json_string(std::string& out, std::string_view s);
std::string go_json_string(std::string_view s);

// The literals a semantic cache hit must share with the stored query, sorted: numbers and
// arithmetic written with them ("2+2" and "2 + 2" both give "2+2"), and text in double quotes
// or backticks. "What is 2+2?" and "What is 2+3?" differ; "What's 2 + 2" and "what is 2+2" not.
std::vector<std::string> extract_literals(std::string_view text);

// 128-bit XXH3 of a sequence of fields (each length-prefixed, so field boundaries count), as 16
// raw bytes: the cache's exact and compatibility keys.
class Fingerprint {
 public:
  Fingerprint& add(std::string_view field);
  std::string digest() const;

 private:
  std::string buf_;
};

}  // namespace turbine::semantic
