#include "trace/otlp_exporter.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "common/env.h"

namespace turbine::trace {
namespace json = boost::json;

namespace {

json::object attribute_json(const Attribute& a) {
  json::object value;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          value["stringValue"] = v;
        } else if constexpr (std::is_same_v<T, int64_t>) {
          value["intValue"] = std::to_string(v);  // OTLP/JSON: 64-bit integers as strings
        } else if constexpr (std::is_same_v<T, double>) {
          value["doubleValue"] = v;
        } else {
          value["boolValue"] = v;
        }
      },
      a.value);
  return {{"key", a.key}, {"value", std::move(value)}};
}

json::object span_json(const SpanData& s) {
  json::object o;
  o["traceId"] = to_hex(s.context.trace_id);
  o["spanId"] = to_hex(s.context.span_id);
  bool root = true;
  for (uint8_t b : s.parent_span_id) root = root && b == 0;
  if (!root) o["parentSpanId"] = to_hex(s.parent_span_id);
  o["name"] = s.name;
  o["kind"] = static_cast<int>(s.kind);
  o["startTimeUnixNano"] = std::to_string(s.start_unix_ns);
  o["endTimeUnixNano"] = std::to_string(s.end_unix_ns);
  json::array attrs;
  for (const Attribute& a : s.attributes) attrs.push_back(attribute_json(a));
  o["attributes"] = std::move(attrs);
  json::object status;
  status["code"] = s.error ? 2 : 0;  // STATUS_CODE_ERROR : STATUS_CODE_UNSET
  if (!s.status_message.empty()) status["message"] = s.status_message;
  o["status"] = std::move(status);
  return o;
}

size_t discard(char*, size_t size, size_t n, void*) {
  return size * n;
}

}  // namespace

std::string otlp_json(const OtlpOptions& options, const std::vector<SpanData>& spans) {
  json::array resource_attrs;
  resource_attrs.push_back(attribute_json({"service.name", options.service_name}));
  for (const auto& [k, v] : options.resource_attributes) {
    resource_attrs.push_back(attribute_json({k, v}));
  }
  json::array span_array;
  for (const SpanData& s : spans) span_array.push_back(span_json(s));
  json::object scope{{"name", "turbine"}};
  json::object scope_spans{{"scope", std::move(scope)}, {"spans", std::move(span_array)}};
  json::object resource_spans{{"resource", json::object{{"attributes", std::move(resource_attrs)}}},
                              {"scopeSpans", json::array{std::move(scope_spans)}}};
  json::object body{{"resourceSpans", json::array{std::move(resource_spans)}}};
  return json::serialize(body);
}

std::string traces_endpoint(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (auto v = get_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v && !v->empty()) return *v;
  if (auto v = get_env("OTEL_EXPORTER_OTLP_ENDPOINT"); v && !v->empty()) {
    std::string base = *v;
    while (!base.empty() && base.back() == '/') base.pop_back();
    return base + "/v1/traces";
  }
  return "";
}

OtlpHttpExporter::OtlpHttpExporter(OtlpOptions options) : options_(std::move(options)) {
  thread_ = std::thread([this] { run(); });
}

OtlpHttpExporter::~OtlpHttpExporter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void OtlpHttpExporter::export_span(SpanData&& span) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= options_.max_queue) {
      dropped_++;
      return;
    }
    queue_.push_back(std::move(span));
    if (queue_.size() < options_.max_batch) return;
  }
  cv_.notify_all();
}

void OtlpHttpExporter::flush() {
  std::unique_lock lock(mu_);
  const uint64_t ticket = ++flush_requests_;
  cv_.notify_all();
  flushed_cv_.wait_for(lock, options_.timeout + std::chrono::seconds(1),
                       [&] { return flushes_done_ >= ticket || stop_; });
}

void OtlpHttpExporter::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait_for(lock, options_.flush_interval, [&] {
      return stop_ || queue_.size() >= options_.max_batch || flush_requests_ > flushes_done_;
    });
    const uint64_t flush_target = flush_requests_;
    // Send everything queued (in batches), then report any flush that asked for it.
    while (!queue_.empty()) {
      std::vector<SpanData> batch;
      const size_t n = std::min(queue_.size(), options_.max_batch);
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      lock.unlock();
      const Status s = post(otlp_json(options_, batch));
      if (s.is_ok()) {
        exported_ += batch.size();
      } else {
        failed_posts_++;
        dropped_ += batch.size();
        spdlog::warn("otlp: {} spans not exported: {}", batch.size(), s.message());
      }
      lock.lock();
    }
    flushes_done_ = flush_target;
    flushed_cv_.notify_all();
    if (stop_) return;
  }
}

Status OtlpHttpExporter::post(const std::string& body) {
  CURL* curl = curl_easy_init();
  if (!curl) return internal_error("curl_easy_init failed");
  char errbuf[CURL_ERROR_SIZE] = {0};
  struct curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  for (const std::string& h : options_.headers) headers = curl_slist_append(headers, h.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, options_.endpoint.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
  const CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return Status(StatusCode::kUnavailable,
                  "POST " + options_.endpoint + ": " +
                      std::string(errbuf[0] ? errbuf : curl_easy_strerror(rc)));
  }
  if (code < 200 || code >= 300) {
    return Status(StatusCode::kUnavailable,
                  "POST " + options_.endpoint + ": HTTP " + std::to_string(code));
  }
  return Status::ok();
}

std::shared_ptr<Tracer> make_tracer(const std::string& endpoint, const std::string& service_name) {
  if (endpoint.empty()) return std::make_shared<Tracer>();
  OtlpOptions o;
  o.endpoint = endpoint;
  o.service_name = service_name;
  if (auto v = get_env("OTEL_SERVICE_NAME"); v && !v->empty()) o.service_name = *v;
  return std::make_shared<Tracer>(std::make_shared<OtlpHttpExporter>(std::move(o)));
}

}  // namespace turbine::trace
