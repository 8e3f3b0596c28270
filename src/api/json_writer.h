// Minimal JSON output helpers for the per-token path: appending to one std::string is several
// times cheaper than building a boost::json::value per chunk.
//
// Strings are always emitted as valid UTF-8: an invalid byte (a token that ends inside a
// multi-byte character, common with byte-level BPE) becomes U+FFFD, so a response never carries
// invalid JSON. Pure functions; safe on any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/utf8.h"

namespace turbine::api {

// Appends `s` as a quoted JSON string.
void append_json_string(std::string& out, std::string_view s);

void append_json_int(std::string& out, int64_t v);

// Shortest round-trip form. Non-finite values (a -inf logprob) are written as -9999.0, as vLLM
// does, because JSON has no infinity.
void append_json_float(std::string& out, float v);

}  // namespace turbine::api
