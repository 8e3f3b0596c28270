// A small blocking HTTP client over libcurl for the Hub protocol: JSON GETs, metadata HEADs and
// resumable downloads into a file descriptor. One instance per thread (it owns a curl handle).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"

namespace turbine::hub {

struct HttpClientOptions {
  std::optional<std::string> token;  // sent as `Authorization: Bearer`; curl drops it on a
                                     // redirect to another host (the CDN), as it should
  long connect_timeout_ms = 10'000;
  long stall_timeout_ms = 60'000;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased; of the last response only
  std::string body;                            // error bodies of downloads are kept here too

  const std::string* header(const std::string& lower_name) const;
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // All three fail (kUnavailable) only when no HTTP response arrived or the transfer broke
  // off; any HTTP status is returned as a response for the caller to interpret.

  // Follows redirects; keeps at most 16 MiB of body.
  Result<HttpResponse> get(const std::string& url);

  // Follows only relative redirects (a renamed repo) and stops at a redirect to another host,
  // whose headers (X-Linked-Etag, X-Linked-Size) describe the file behind it.
  Result<HttpResponse> head(const std::string& url);

  // GETs `url` into `fd`, following redirects. With `offset` > 0 asks for `Range: bytes=offset-`;
  // a 206 answer is written from `offset`, a 200 answer restarts the file from 0. Bodies of
  // error statuses go to the response body instead of the file. `on_bytes(file_size_so_far)`
  // is called as data arrives; returning false aborts the transfer (kCancelled).
  Result<HttpResponse> download(const std::string& url, int fd, std::uint64_t offset,
                                const std::function<bool(std::uint64_t)>& on_bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Percent-encodes `text` for a URL path; '/' is kept when `keep_slash`.
std::string url_quote(std::string_view text, bool keep_slash);

}  // namespace turbine::hub
