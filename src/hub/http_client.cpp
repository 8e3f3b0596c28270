#include "hub/http_client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace turbine::hub {
namespace {

constexpr std::size_t kMaxBodyBytes = 16u << 20;
constexpr std::size_t kMaxErrorBodyBytes = 64u << 10;
constexpr int kMaxRelativeRedirects = 10;

Status unavailable(std::string msg) {
  return {StatusCode::kUnavailable, std::move(msg)};
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// "http://host:port/path" -> "http://host:port".
std::string origin_of(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return {};
  const auto path_start = url.find('/', scheme_end + 3);
  return path_start == std::string::npos ? url : url.substr(0, path_start);
}

// Start of a "bytes START-END/TOTAL" Content-Range value.
std::optional<std::uint64_t> content_range_start(const std::string& value) {
  std::string_view v = trim(value);
  if (v.substr(0, 6) != "bytes ") return std::nullopt;
  v.remove_prefix(6);
  std::uint64_t start = 0;
  std::size_t i = 0;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i) start = start * 10 + (v[i] - '0');
  if (i == 0 || i >= v.size() || v[i] != '-') return std::nullopt;
  return start;
}

// Per-request state shared with the libcurl callbacks (called on the calling thread).
struct Transfer {
  CURL* curl = nullptr;
  HttpResponse response;
  std::size_t body_cap = kMaxBodyBytes;

  // Download mode: body of a 200/206 goes to fd_.
  int fd = -1;
  std::uint64_t offset = 0;
  std::uint64_t pos = 0;
  bool decided = false;
  bool to_file = false;
  const std::function<bool(std::uint64_t)>* on_bytes = nullptr;

  // Why a callback aborted the transfer.
  std::optional<Status> abort_reason;
};

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string_view line(data, size * n);
  if (line.substr(0, 5) == "HTTP/") {
    t->response.headers.clear();  // a new response (after a redirect or 100-continue)
    return size * n;
  }
  const auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->response.headers[lower(trim(line.substr(0, colon)))] =
        std::string(trim(line.substr(colon + 1)));
  }
  return size * n;
}

std::size_t write_body(Transfer* t, const char* data, std::size_t len) {
  const std::size_t room = t->body_cap - std::min(t->body_cap, t->response.body.size());
  t->response.body.append(data, std::min(room, len));
  return len;
}

std::size_t on_write(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t len = size * n;
  if (t->fd < 0) return write_body(t, data, len);

  if (!t->decided) {
    t->decided = true;
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code == 206) {
      const std::string* range = t->response.header("content-range");
      const auto start = range ? content_range_start(*range) : std::nullopt;
      if (!start || *start != t->offset) {
        t->abort_reason = data_loss("server answered the resume request with the wrong range (" +
                                    (range ? *range : std::string("no Content-Range")) + ")");
        return 0;
      }
      t->to_file = true;
      t->pos = t->offset;
    } else if (code == 200) {
      // The server ignored Range: start the file over.
      if (::ftruncate(t->fd, 0) != 0) {
        t->abort_reason =
            internal_error(std::string("cannot truncate download: ") + std::strerror(errno));
        return 0;
      }
      t->to_file = true;
      t->pos = 0;
    } else {
      t->body_cap = kMaxErrorBodyBytes;
    }
  }
  if (!t->to_file) return write_body(t, data, len);

  std::size_t done = 0;
  while (done < len) {
    const ssize_t w = ::pwrite(t->fd, data + done, len - done, static_cast<off_t>(t->pos));
    if (w < 0) {
      if (errno == EINTR) continue;
      t->abort_reason =
          internal_error(std::string("cannot write download: ") + std::strerror(errno));
      return 0;
    }
    done += static_cast<std::size_t>(w);
    t->pos += static_cast<std::uint64_t>(w);
  }
  if (t->on_bytes != nullptr && *t->on_bytes && !(*t->on_bytes)(t->pos)) {
    t->abort_reason = Status(StatusCode::kCancelled, "download cancelled");
    return 0;
  }
  return len;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

const std::string* HttpResponse::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? nullptr : &it->second;
}

struct HttpClient::Impl {
  HttpClientOptions options;
  CURL* curl = nullptr;

  // Runs one request; `extra_headers` are added to the Authorization header.
  Result<HttpResponse> perform(const std::string& url, bool head, bool follow,
                               const std::vector<std::string>& extra_headers, Transfer& t) {
    if (curl == nullptr) return internal_error("libcurl could not be initialised");
    curl_easy_reset(curl);  // keeps the connection cache, drops the previous request's options
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_slist* headers = nullptr;
    if (options.token)
      headers = curl_slist_append(headers, ("Authorization: Bearer " + *options.token).c_str());
    for (const auto& h : extra_headers) headers = curl_slist_append(headers, h.c_str());

    t.curl = curl;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "turbine; hf_hub-compatible");
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, options.connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, std::max(1L, options.stall_timeout_ms / 1000));
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(curl, CURLOPT_NOBODY, head ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);

    const CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &t.response.status);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
    curl_slist_free_all(headers);

    if (t.abort_reason) return *t.abort_reason;
    if (rc != CURLE_OK) {
      std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
      return unavailable(detail);
    }
    return std::move(t.response);
  }
};

HttpClient::HttpClient(HttpClientOptions options) : impl_(std::make_unique<Impl>()) {
  global_init();
  impl_->options = std::move(options);
  impl_->curl = curl_easy_init();
}

HttpClient::~HttpClient() {
  if (impl_->curl != nullptr) curl_easy_cleanup(impl_->curl);
}

Result<HttpResponse> HttpClient::get(const std::string& url) {
  Transfer t;
  return impl_->perform(url, /*head=*/false, /*follow=*/true, {}, t);
}

Result<HttpResponse> HttpClient::head(const std::string& url) {
  std::string current = url;
  for (int hop = 0;; ++hop) {
    Transfer t;
    // Sizes must be those of the stored bytes, not of a compressed encoding.
    auto response =
        impl_->perform(current, /*head=*/true, /*follow=*/false, {"Accept-Encoding: identity"}, t);
    if (!response) return response;
    const std::string* location = response->header("location");
    const bool relative_redirect = response->status >= 300 && response->status < 400 &&
                                   location != nullptr && location->size() > 1 &&
                                   (*location)[0] == '/' && (*location)[1] != '/';
    if (!relative_redirect || hop >= kMaxRelativeRedirects) return response;
    current = origin_of(current) + *location;
  }
}

Result<HttpResponse> HttpClient::download(const std::string& url, int fd, std::uint64_t offset,
                                          const std::function<bool(std::uint64_t)>& on_bytes) {
  Transfer t;
  t.fd = fd;
  t.offset = offset;
  t.on_bytes = &on_bytes;
  std::vector<std::string> headers = {"Accept-Encoding: identity"};
  if (offset > 0) headers.push_back("Range: bytes=" + std::to_string(offset) + "-");
  return impl_->perform(url, /*head=*/false, /*follow=*/true, headers, t);
}

std::string url_quote(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace turbine::hub
