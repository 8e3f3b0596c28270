#include "http/request_parser.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

#include "http/beast_request.h"
#include "http/request_checks.h"

namespace turbine::http {
namespace beast_http = boost::beast::http;

Request head_of(const beast_http::request<beast_http::string_body>& msg, std::string remote) {
  Request req;
  req.method = std::string(msg.method_string());
  std::string_view target = origin_form(msg.target());
  const size_t q = target.find('?');
  if (q != std::string_view::npos) {
    req.query = std::string(target.substr(q + 1));
    target = target.substr(0, q);
  }
  req.target = std::string(target);
  req.version = static_cast<int>(msg.version());
  req.headers.reserve(8);
  for (const auto& field : msg) {
    req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  req.remote = std::move(remote);
  return req;
}

Request to_request(beast_http::request<beast_http::string_body>&& msg, std::string remote) {
  Request req = head_of(msg, std::move(remote));
  req.body = std::move(msg.body());
  return req;
}

Result<Request> parse_request(std::string_view raw, size_t max_body_bytes) {
  try {
    beast_http::request_parser<beast_http::string_body> parser;
    parser.header_limit(kMaxHeaderBytes);
    parser.body_limit(max_body_bytes);
    parser.eager(true);
    boost::system::error_code ec;
    size_t used = 0;
    while (!parser.is_done()) {
      const size_t n = parser.put(boost::asio::buffer(raw.data() + used, raw.size() - used), ec);
      used += n;
      if (ec == beast_http::error::need_more) {
        // Beast has seen every byte we have and needs more: the input ends here. Offering the
        // same bytes again breaks put()'s contract (Beast asserts), so finish at EOF instead; a
        // close-delimited end is only valid where the grammar allows it.
        if (!parser.got_some()) return invalid_argument("incomplete HTTP request");
        parser.put_eof(ec);
        if (ec) return invalid_argument("incomplete HTTP request");
        break;
      }
      if (ec == beast_http::error::body_limit) {
        return Status(StatusCode::kPayloadTooLarge, "request body too large");
      }
      if (ec) return invalid_argument("malformed HTTP request: " + ec.message());
      if (n == 0) break;
    }
    if (!parser.is_done()) return invalid_argument("incomplete HTTP request");
    return to_request(parser.release(), {});
  } catch (const std::exception& e) {
    return invalid_argument(std::string("malformed HTTP request: ") + e.what());
  }
}

}  // namespace turbine::http
