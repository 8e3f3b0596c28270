// Distributed tracing: W3C Trace Context (`traceparent`) and spans.
//
// A request's trace context travels frontend -> router -> worker: the frontend continues the
// client's `traceparent` (or starts a trace), the router and the worker each open a child span,
// and every finished span goes to a SpanExporter (OTLP/HTTP in trace/otlp_exporter.h). With no
// exporter configured, tracing costs a null check: spans record nothing and the incoming context
// is passed through unchanged, so a traced caller still sees one trace across Turbine.
//
// Sampling follows the parent (OpenTelemetry's default ParentBased(AlwaysOn)): a context whose
// sampled flag is clear yields spans that record nothing but propagate the flag.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace turbine::trace {

using TraceId = std::array<uint8_t, 16>;
using SpanId = std::array<uint8_t, 8>;

struct TraceContext {
  TraceId trace_id{};
  SpanId span_id{};
  uint8_t flags = 0;  // bit 0: sampled

  // Both ids non-zero (the W3C rule for a usable context).
  bool valid() const;
  bool sampled() const { return (flags & 1) != 0; }
  bool operator==(const TraceContext&) const = default;
};

// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`. Returns nullopt for anything else
// (wrong length or separators, upper-case or non-hex digits, version ff, all-zero ids); a
// higher version is accepted by its first four fields, as the spec asks.
std::optional<TraceContext> parse_traceparent(std::string_view header);
std::string format_traceparent(const TraceContext& context);
std::string to_hex(const uint8_t* bytes, size_t n);
template <size_t N>
std::string to_hex(const std::array<uint8_t, N>& id) {
  return to_hex(id.data(), N);
}

enum class SpanKind : uint8_t { kInternal = 1, kServer = 2, kClient = 3 };

struct Attribute {
  std::string key;
  std::variant<std::string, int64_t, double, bool> value;
};

// A finished span, as exporters receive it.
struct SpanData {
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  TraceContext context;     // this span's trace id and span id
  SpanId parent_span_id{};  // all zero: a root span
  uint64_t start_unix_ns = 0;
  uint64_t end_unix_ns = 0;
  std::vector<Attribute> attributes;
  bool error = false;
  std::string status_message;
};

class SpanExporter {
 public:
  virtual ~SpanExporter() = default;
  // Called once per finished, sampled span, from any thread; must not block.
  virtual void export_span(SpanData&& span) = 0;
};

class Tracer;

// One operation. Move-only; ends (and is exported) on end() or destruction, whichever is first.
class Span {
 public:
  Span() = default;
  Span(Span&& other) noexcept;
  Span& operator=(Span&& other) noexcept;
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  ~Span() { end(); }

  // The context children continue: this span's ids, or the parent's when not recording.
  const TraceContext& context() const { return data_.context; }
  bool recording() const { return exporter_ != nullptr; }

  void set_attribute(std::string key, std::string value);
  void set_attribute(std::string key, int64_t value);
  void set_attribute(std::string key, double value);
  void set_attribute(std::string key, bool value);
  void set_error(std::string message);
  void end();

 private:
  friend class Tracer;
  std::shared_ptr<SpanExporter> exporter_;  // null: not recording
  SpanData data_;
};

// Makes spans for one process. Thread-safe. A Tracer without an exporter records nothing.
class Tracer {
 public:
  explicit Tracer(std::shared_ptr<SpanExporter> exporter = nullptr);

  bool enabled() const { return exporter_ != nullptr; }
  // A child of `parent` when it is valid, else the root of a new (sampled) trace.
  Span start_span(std::string name, SpanKind kind, const TraceContext& parent);
  // A fresh context for a new trace (random ids, sampled).
  TraceContext new_root();

 private:
  SpanId new_span_id();
  std::shared_ptr<SpanExporter> exporter_;
  std::mutex mu_;
  std::mt19937_64 rng_;
};

uint64_t unix_now_ns();

}  // namespace turbine::trace
