// Exports spans to an OpenTelemetry collector over OTLP/HTTP with JSON bodies
// (POST {endpoint}, `Content-Type: application/json`, the ExportTraceServiceRequest shape).
//
// export_span() only queues (bounded: spans beyond max_queue are dropped and counted); one
// background thread sends batches every flush_interval or max_batch spans, with a timeout per
// POST. A collector that is down costs dropped spans, never a blocked request. The destructor
// sends what is queued (bounded by the timeout) and stops the thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/trace.h"

namespace turbine::trace {

struct OtlpOptions {
  std::string endpoint;  // full URL of the traces endpoint, e.g. http://collector:4318/v1/traces
  std::string service_name = "turbine";
  std::vector<std::pair<std::string, std::string>> resource_attributes;  // besides service.name
  std::vector<std::string> headers;  // extra HTTP headers, "Name: value"
  std::chrono::milliseconds flush_interval{200};
  std::chrono::milliseconds timeout{5000};
  size_t max_batch = 512;
  size_t max_queue = 8192;
};

// The request body for a batch of spans (exposed for tests).
std::string otlp_json(const OtlpOptions& options, const std::vector<SpanData>& spans);

// Where traces go, from the standard OpenTelemetry variables when `flag` is empty:
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else OTEL_EXPORTER_OTLP_ENDPOINT + "/v1/traces".
// Empty: tracing off.
std::string traces_endpoint(const std::string& flag);

class OtlpHttpExporter final : public SpanExporter {
 public:
  explicit OtlpHttpExporter(OtlpOptions options);
  ~OtlpHttpExporter() override;

  void export_span(SpanData&& span) override;
  // Sends everything queued now; returns when done or after the timeout.
  void flush();

  uint64_t exported() const { return exported_.load(); }
  uint64_t dropped() const { return dropped_.load(); }
  uint64_t failed_posts() const { return failed_posts_.load(); }

 private:
  void run();
  Status post(const std::string& body);

  const OtlpOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable flushed_cv_;
  std::deque<SpanData> queue_;
  uint64_t flush_requests_ = 0;
  uint64_t flushes_done_ = 0;
  bool stop_ = false;
  std::atomic<uint64_t> exported_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> failed_posts_{0};
  std::thread thread_;
};

// A Tracer exporting to `endpoint` over OTLP/HTTP, or a disabled one when it is empty.
std::shared_ptr<Tracer> make_tracer(const std::string& endpoint, const std::string& service_name);

}  // namespace turbine::trace
