// Internal to the http module (includes Beast): converts a parsed Beast request to Request.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string>

#include "http/router.h"

namespace turbine::http {

inline constexpr size_t kMaxHeaderBytes = 64 * 1024;

// The request line and headers only (no body): what the server checks before reading the body.
Request head_of(const boost::beast::http::request<boost::beast::http::string_body>& msg,
                std::string remote);

Request to_request(boost::beast::http::request<boost::beast::http::string_body>&& msg,
                   std::string remote);

}  // namespace turbine::http
