// One-shot HTTP/1.x request parsing from a byte buffer, with the server's limits. Used by the
// fuzz target and by tools; the server itself parses incrementally from the socket.
#pragma once

#include <cstddef>
#include <string_view>

#include "common/status.h"
#include "http/router.h"

namespace turbine::http {

// Parses exactly one complete request from `raw`. kInvalidArgument for malformed or incomplete
// input, kPayloadTooLarge if the body exceeds `max_body_bytes`. Never throws.
Result<Request> parse_request(std::string_view raw, size_t max_body_bytes);

}  // namespace turbine::http
