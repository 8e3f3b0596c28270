// The chat playground: one self-contained HTML page (inline CSS and JS, no CDN, nothing built at
// run time) that `turbine run` and `turbine frontend` serve on GET / unless --no-ui. It talks to
// the same server's /v1/models and /v1/chat/completions (streaming) like any OpenAI client:
// model picker, system prompt, temperature, max tokens, API key, stop button, TTFT and tokens/s,
// and `reasoning_content` deltas shown apart from the answer.
#pragma once

#include <string_view>

#include "http/router.h"

namespace turbine::frontend {

// The page (UTF-8 HTML), a static string.
std::string_view playground_html();

// GET / handler: the page with a Content-Security-Policy that allows only this origin. Stateless
// and thread-safe.
http::Handler playground_handler();

}  // namespace turbine::frontend
