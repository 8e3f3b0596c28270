#include "runtime/etcd_discovery.h"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

namespace turbine::runtime {
namespace {

namespace json = boost::json;

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string b64encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (i + 1 < in.size()) v |= uint8_t(in[i + 1]) << 8;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> b64decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const int v = val(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

// [prefix, prefix with its last byte + 1): etcd's range for "every key under prefix".
std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<uint8_t>(prefix.back()) < 0xff) {
      prefix.back() = static_cast<char>(prefix.back() + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

// int64 fields arrive as strings ("123") and are omitted when 0.
int64_t get_i64(const json::object& o, const char* k) {
  const json::value* v = o.if_contains(k);
  if (!v) return 0;
  if (v->is_string()) {
    try {
      return std::stoll(std::string(v->get_string()));
    } catch (...) {
      return 0;
    }
  }
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  return 0;
}

size_t on_write(char* data, size_t size, size_t n, void* user) {
  auto* fn = static_cast<std::function<bool(std::string_view)>*>(user);
  return (*fn)(std::string_view(data, size * n)) ? size * n : 0;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* stop = static_cast<const std::atomic<bool>*>(user);
  return stop && stop->load() ? 1 : 0;
}

}  // namespace

Status EtcdOptions::validate() const {
  if (endpoints.empty()) return invalid_argument("no etcd endpoints", "etcd_endpoints");
  if (lease_ttl_s < 2) return invalid_argument("the lease TTL must be >= 2 s", "lease_ttl");
  if (username.empty() != password.empty())
    return invalid_argument("etcd user and password go together", "etcd_user");
  return Status::ok();
}

std::vector<std::string> parse_etcd_endpoints(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string e = list.substr(start, comma - start);
    while (!e.empty() && (e.back() == '/' || e.back() == ' ')) e.pop_back();
    while (!e.empty() && e.front() == ' ') e.erase(0, 1);
    if (!e.empty()) {
      if (e.find("://") == std::string::npos) e = "http://" + e;
      out.push_back(e);
    }
    start = comma + 1;
  }
  return out;
}

struct EtcdDiscovery::Impl {
  explicit Impl(EtcdOptions o) : options(std::move(o)) {}

  // One POST to the first endpoint that answers; the body parsed. `stop` aborts a stream;
  // `on_chunk`, when given, receives the body as it arrives (streaming) instead.
  Result<json::value> post(const std::string& path, const json::value& body, long timeout_ms = -1,
                           std::function<bool(std::string_view)> on_chunk = nullptr,
                           const std::atomic<bool>* stop = nullptr) {
    const std::string payload = json::serialize(body);
    std::string last_error = "no endpoint";
    const size_t n = options.endpoints.size();
    const size_t first = good_endpoint.load();
    for (size_t k = 0; k < n; ++k) {
      const size_t idx = (first + k) % n;
      std::string response;
      std::function<bool(std::string_view)> sink = on_chunk ? on_chunk : [&](std::string_view d) {
        response.append(d);
        return response.size() < (64u << 20);
      };
      CURL* curl = curl_easy_init();
      if (!curl) return internal_error("curl_easy_init failed");
      char errbuf[CURL_ERROR_SIZE] = {0};
      struct curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
      std::string auth;
      {
        std::lock_guard lock(token_mu);
        if (!token.empty()) auth = "Authorization: " + token;
      }
      if (!auth.empty()) headers = curl_slist_append(headers, auth.c_str());
      const std::string url = options.endpoints[idx] + path;
      curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
      curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
      curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload.c_str());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
      curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
      const long t = timeout_ms < 0 ? options.request_timeout_ms : timeout_ms;
      curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, t);
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
      curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
      if (stop) {
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, stop);
      }
      if (!options.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options.ca_file.c_str());
      if (!options.cert_file.empty())
        curl_easy_setopt(curl, CURLOPT_SSLCERT, options.cert_file.c_str());
      if (!options.key_file.empty())
        curl_easy_setopt(curl, CURLOPT_SSLKEY, options.key_file.c_str());
      const CURLcode rc = curl_easy_perform(curl);
      long status = 0;
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
      curl_slist_free_all(headers);
      curl_easy_cleanup(curl);
      if (on_chunk) {
        // A stream: it ended (etcd went away, or stop); the caller decides.
        if (rc == CURLE_OK || status != 0) good_endpoint = idx;
        if (rc != CURLE_OK) {
          return Status(StatusCode::kUnavailable,
                        "etcd watch stream ended: " +
                            std::string(errbuf[0] ? errbuf : curl_easy_strerror(rc)));
        }
        return json::value();
      }
      if (rc != CURLE_OK) {
        last_error = url + ": " + (errbuf[0] ? errbuf : curl_easy_strerror(rc));
        continue;
      }
      good_endpoint = idx;
      boost::system::error_code ec;
      json::value v = json::parse(response, ec);
      if (ec || !v.is_object()) {
        return Status(StatusCode::kUnavailable, "etcd " + path + " answered HTTP " +
                                                    std::to_string(status) + ": " + response);
      }
      if (const json::value* err = v.get_object().if_contains("error")) {
        const int64_t code = get_i64(v.get_object(), "code");
        if (code == 16 && !options.username.empty()) {  // UNAUTHENTICATED: token expired
          std::lock_guard lock(token_mu);
          token.clear();
        }
        return Status(
            StatusCode::kUnavailable,
            "etcd " + path + ": " +
                (err->is_string() ? std::string(err->get_string()) : json::serialize(*err)));
      }
      return v;
    }
    return Status(StatusCode::kUnavailable, "etcd is unreachable: " + last_error);
  }

  Status authenticate() {
    if (options.username.empty()) return Status::ok();
    {
      std::lock_guard lock(token_mu);
      if (!token.empty()) return Status::ok();
    }
    TURBINE_ASSIGN_OR_RETURN(
        json::value v, post("/v3/auth/authenticate", json::object{{"name", options.username},
                                                                  {"password", options.password}}));
    const json::value* t = v.get_object().if_contains("token");
    if (!t || !t->is_string()) return {StatusCode::kUnauthenticated, "etcd gave no auth token"};
    std::lock_guard lock(token_mu);
    token = std::string(t->get_string());
    return Status::ok();
  }

  // Authenticates when needed, then posts.
  Result<json::value> call(const std::string& path, const json::value& body) {
    TURBINE_RETURN_IF_ERROR(authenticate());
    return post(path, body);
  }

  Result<uint64_t> grant() {
    TURBINE_ASSIGN_OR_RETURN(json::value v,
                             call("/v3/lease/grant", json::object{{"TTL", options.lease_ttl_s}}));
    const int64_t id = get_i64(v.get_object(), "ID");
    if (id == 0) return Status(StatusCode::kUnavailable, "etcd granted no lease");
    return static_cast<uint64_t>(id);
  }

  Status put(const std::string& key, const std::string& value, uint64_t lease_id) {
    json::object body{{"key", b64encode(key)}, {"value", b64encode(value)}};
    if (lease_id) body["lease"] = std::to_string(static_cast<int64_t>(lease_id));
    return call("/v3/kv/put", body).status();
  }

  // Returns the keys and the store revision they were read at.
  Result<std::pair<std::vector<KeyValue>, int64_t>> range(const std::string& prefix) {
    TURBINE_ASSIGN_OR_RETURN(
        json::value v,
        call("/v3/kv/range", json::object{{"key", b64encode(prefix)},
                                          {"range_end", b64encode(prefix_end(prefix))}}));
    const json::object& o = v.get_object();
    int64_t rev = 0;
    if (const json::value* h = o.if_contains("header"); h && h->is_object())
      rev = get_i64(h->get_object(), "revision");
    std::vector<KeyValue> out;
    if (const json::value* kvs = o.if_contains("kvs"); kvs && kvs->is_array()) {
      for (const json::value& kv : kvs->get_array()) {
        if (!kv.is_object()) continue;
        const json::object& ko = kv.get_object();
        const json::value* k = ko.if_contains("key");
        const json::value* val = ko.if_contains("value");
        if (!k || !k->is_string()) continue;
        auto key = b64decode(k->get_string());
        auto value = val && val->is_string() ? b64decode(val->get_string()) : std::string();
        if (key && value) out.push_back({std::move(*key), std::move(*value)});
      }
    }
    return std::make_pair(std::move(out), rev);
  }

  void keepalive_loop() {
    const auto period = std::chrono::milliseconds(options.lease_ttl_s * 1000 / 3);
    bool outage = false;
    std::unique_lock lock(mu);
    while (!stopping) {
      cv.wait_for(lock, outage ? std::chrono::milliseconds(1000) : period);
      if (stopping) break;
      const uint64_t id = lease;
      lock.unlock();
      Status st = keepalive_once(id);
      lock.lock();
      if (!st.is_ok()) {
        if (!outage) spdlog::warn("etcd: {}; serving with what is known, retrying", st.message());
        outage = true;
      } else if (outage) {
        spdlog::info("etcd: reachable again");
        outage = false;
      }
    }
  }

  // Renews the lease; grants a new one and puts every registered key again if it was lost.
  Status keepalive_once(uint64_t id) {
    TURBINE_ASSIGN_OR_RETURN(json::value v,
                             call("/v3/lease/keepalive",
                                  json::object{{"ID", std::to_string(static_cast<int64_t>(id))}}));
    const json::value* r = v.get_object().if_contains("result");
    const int64_t ttl = r && r->is_object() ? get_i64(r->get_object(), "TTL") : 0;
    if (ttl > 0) return Status::ok();
    spdlog::warn("etcd: lease {:x} is gone; granting a new one and registering again", id);
    TURBINE_ASSIGN_OR_RETURN(uint64_t fresh, grant());
    std::map<std::string, std::string> keys;
    {
      std::lock_guard lock(mu);
      lease = fresh;
      keys = registered;
    }
    for (const auto& [k, val] : keys) TURBINE_RETURN_IF_ERROR(put(k, val, fresh));
    spdlog::info("etcd: lease {:x}, {} keys registered again", fresh, keys.size());
    return Status::ok();
  }

  EtcdOptions options;
  std::atomic<size_t> good_endpoint{0};
  std::mutex token_mu;  // guards token
  std::string token;
  std::mutex mu;  // guards lease, registered, stopping
  std::condition_variable cv;
  uint64_t first_lease = 0;
  uint64_t lease = 0;
  std::map<std::string, std::string> registered;
  bool stopping = false;
  std::thread keepalive;
  std::once_flag shutdown_once;
};

namespace {

// One watch: a thread that lists, then streams changes, and on a break lists again and
// delivers the difference.
class EtcdWatch final : public WatchHandle {
 public:
  EtcdWatch(std::shared_ptr<EtcdDiscovery::Impl> impl, std::string prefix, WatchCallback cb)
      : impl_(std::move(impl)), prefix_(std::move(prefix)), cb_(std::move(cb)) {}
  ~EtcdWatch() override {
    stop_ = true;
    {
      std::lock_guard lock(mu_);
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

  // Lists synchronously (the caller sees the snapshot before watch() returns), then streams.
  Status start() {
    TURBINE_ASSIGN_OR_RETURN(auto snapshot, impl_->range(prefix_));
    apply_snapshot(snapshot.first);
    revision_ = snapshot.second;
    thread_ = std::thread([this] { run(); });
    return Status::ok();
  }

 private:
  // Delivers the difference between known_ and `kvs`. With `defer_removals`, keys missing from
  // `kvs` stay known (no event) and true is returned if there were any: after an outage a fresh
  // etcd is empty until its clients register again, and removing every worker meanwhile would
  // fail requests that the workers can still serve. The caller lists again one lease TTL later
  // (a key still missing then is really gone).
  bool apply_snapshot(const std::vector<KeyValue>& kvs, bool defer_removals = false) {
    std::map<std::string, std::string> fresh;
    for (const KeyValue& kv : kvs) fresh[kv.key] = kv.value;
    bool deferred = false;
    for (const auto& [k, v] : known_) {
      if (fresh.count(k)) continue;
      if (defer_removals) {
        fresh[k] = v;
        deferred = true;
      } else {
        cb_({WatchEvent::Type::kRemoved, k, {}});
      }
    }
    for (const auto& [k, v] : fresh) {
      auto it = known_.find(k);
      if (it == known_.end() || it->second != v) cb_({WatchEvent::Type::kAdded, k, v});
    }
    known_ = std::move(fresh);
    return deferred;
  }

  void run() {
    bool need_list = false;
    bool broke = false;  // the last stream ended by a break, not by the deferred-removal timer
    long stream_timeout_ms = 0;
    while (!stop_) {
      if (need_list) {
        auto snapshot = impl_->range(prefix_);
        if (!snapshot) {
          sleep(std::chrono::milliseconds(500));
          continue;
        }
        const bool deferred = apply_snapshot(snapshot->first, /*defer_removals=*/broke);
        stream_timeout_ms = deferred ? (impl_->options.lease_ttl_s + 1) * 1000L : 0;
        revision_ = snapshot->second;
      }
      need_list = true;
      const auto t0 = std::chrono::steady_clock::now();
      stream(stream_timeout_ms);
      broke = stream_timeout_ms == 0 ||
              std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(stream_timeout_ms);
      if (!stop_ && broke) sleep(std::chrono::milliseconds(200));
    }
  }

  // Streams events after revision_ until the stream breaks, stop_, or `timeout_ms` (0: none).
  void stream(long timeout_ms) {
    json::object create{{"key", b64encode(prefix_)},
                        {"range_end", b64encode(prefix_end(prefix_))},
                        {"start_revision", std::to_string(revision_ + 1)}};
    std::string pending;
    bool canceled = false;
    auto on_chunk = [&](std::string_view data) {
      pending.append(data);
      size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        if (!line.empty() && !handle_line(line)) canceled = true;
      }
      return !stop_ && !canceled;
    };
    (void)impl_->authenticate();
    Status st = impl_
                    ->post("/v3/watch", json::object{{"create_request", create}}, timeout_ms,
                           on_chunk, &stop_)
                    .status();
    if (!st.is_ok() && !stop_) spdlog::debug("etcd watch on {}: {}", prefix_, st.message());
  }

  // Applies one watch response; false when etcd cancelled the watch (compaction, error).
  bool handle_line(const std::string& line) {
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) return true;
    const json::value* r = v.get_object().if_contains("result");
    if (!r || !r->is_object()) return v.get_object().if_contains("error") == nullptr;
    const json::object& res = r->get_object();
    if (const json::value* c = res.if_contains("canceled"); c && c->is_bool() && c->get_bool())
      return false;
    const json::value* events = res.if_contains("events");
    if (!events || !events->is_array()) return true;
    for (const json::value& e : events->get_array()) {
      if (!e.is_object()) continue;
      const json::object& eo = e.get_object();
      const json::value* kv = eo.if_contains("kv");
      if (!kv || !kv->is_object()) continue;
      const json::object& kvo = kv->get_object();
      const json::value* k = kvo.if_contains("key");
      if (!k || !k->is_string()) continue;
      auto key = b64decode(k->get_string());
      if (!key) continue;
      revision_ = std::max(revision_, get_i64(kvo, "mod_revision"));
      const json::value* type = eo.if_contains("type");
      const bool is_delete = type && type->is_string() && type->get_string() == "DELETE";
      if (is_delete) {
        if (known_.erase(*key)) cb_({WatchEvent::Type::kRemoved, *key, {}});
      } else {
        const json::value* val = kvo.if_contains("value");
        auto value = val && val->is_string() ? b64decode(val->get_string()) : std::string();
        if (!value) continue;
        known_[*key] = *value;
        cb_({WatchEvent::Type::kAdded, *key, *value});
      }
    }
    return true;
  }

  void sleep(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, d, [this] { return stop_.load(); });
  }

  std::shared_ptr<EtcdDiscovery::Impl> impl_;
  const std::string prefix_;
  WatchCallback cb_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  // Watch thread only (and start() before it exists):
  std::map<std::string, std::string> known_;
  int64_t revision_ = 0;
};

}  // namespace

Result<std::unique_ptr<EtcdDiscovery>> EtcdDiscovery::create(EtcdOptions options) {
  TURBINE_RETURN_IF_ERROR(options.validate());
  static std::once_flag curl_once;
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  auto impl = std::make_shared<Impl>(std::move(options));
  TURBINE_ASSIGN_OR_RETURN(uint64_t lease, impl->grant());
  impl->first_lease = lease;
  impl->lease = lease;
  impl->keepalive = std::thread([raw = impl.get()] { raw->keepalive_loop(); });
  return std::unique_ptr<EtcdDiscovery>(new EtcdDiscovery(std::move(impl)));
}

EtcdDiscovery::EtcdDiscovery(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

EtcdDiscovery::~EtcdDiscovery() {
  shutdown();
}

uint64_t EtcdDiscovery::instance_id() const {
  return impl_->first_lease;
}

uint64_t EtcdDiscovery::current_lease() const {
  std::lock_guard lock(impl_->mu);
  return impl_->lease;
}

Status EtcdDiscovery::register_key(const std::string& key, const std::string& value) {
  uint64_t lease;
  {
    std::lock_guard lock(impl_->mu);
    impl_->registered[key] = value;
    lease = impl_->lease;
  }
  return impl_->put(key, value, lease);
}

Status EtcdDiscovery::unregister_key(const std::string& key) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->registered.erase(key);
  }
  return impl_->call("/v3/kv/deleterange", json::object{{"key", b64encode(key)}}).status();
}

Result<std::vector<KeyValue>> EtcdDiscovery::list(const std::string& prefix) {
  TURBINE_ASSIGN_OR_RETURN(auto r, impl_->range(prefix));
  return std::move(r.first);
}

Result<std::unique_ptr<WatchHandle>> EtcdDiscovery::watch(const std::string& prefix,
                                                          WatchCallback on_event) {
  auto w = std::make_unique<EtcdWatch>(impl_, prefix, std::move(on_event));
  TURBINE_RETURN_IF_ERROR(w->start());
  return std::unique_ptr<WatchHandle>(std::move(w));
}

void EtcdDiscovery::shutdown() {
  std::call_once(impl_->shutdown_once, [this] {
    uint64_t lease;
    {
      std::lock_guard lock(impl_->mu);
      impl_->stopping = true;
      impl_->registered.clear();
      lease = impl_->lease;
    }
    impl_->cv.notify_all();
    if (impl_->keepalive.joinable()) impl_->keepalive.join();
    Status st = impl_
                    ->call("/v3/lease/revoke",
                           json::object{{"ID", std::to_string(static_cast<int64_t>(lease))}})
                    .status();
    if (!st.is_ok()) spdlog::warn("etcd: cannot revoke lease {:x}: {}", lease, st.message());
  });
}

}  // namespace turbine::runtime
