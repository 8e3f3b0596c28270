// GET / -> the playground page (frontend/playground_page.cpp).
#include "frontend/playground.h"

#include <string>

namespace turbine::frontend {

http::Handler playground_handler() {
  // Inline script and style are the page's own; it may talk to this origin only.
  http::Headers headers = {
      {"Content-Security-Policy",
       "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src "
       "'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"Cache-Control", "no-cache"}};
  return [headers](const http::Request&, http::ResponseWriter& w) -> boost::asio::awaitable<void> {
    co_await w.send(200, "text/html; charset=utf-8", std::string(playground_html()), headers);
  };
}

}  // namespace turbine::frontend
