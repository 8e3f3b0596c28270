#include "common/trace.h"

#include <chrono>

namespace turbine::trace {
namespace {

template <size_t N>
bool all_zero(const std::array<uint8_t, N>& a) {
  for (uint8_t b : a) {
    if (b != 0) return false;
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // the spec allows lower-case hex only
}

bool parse_hex(std::string_view s, uint8_t* out, size_t n) {
  if (s.size() != 2 * n) return false;
  for (size_t i = 0; i < n; ++i) {
    const int hi = hex_value(s[2 * i]);
    const int lo = hex_value(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

}  // namespace

bool TraceContext::valid() const {
  return !all_zero(trace_id) && !all_zero(span_id);
}

std::string to_hex(const uint8_t* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[bytes[i] >> 4];
    s[2 * i + 1] = kDigits[bytes[i] & 15];
  }
  return s;
}

std::optional<TraceContext> parse_traceparent(std::string_view h) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 characters.
  constexpr size_t kLength = 55;
  if (h.size() < kLength || h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  uint8_t version = 0;
  if (!parse_hex(h.substr(0, 2), &version, 1) || version == 0xff) return std::nullopt;
  // Version 00 is exactly 55 characters; a later version may append "-..." fields.
  if (version == 0 ? h.size() != kLength : (h.size() > kLength && h[kLength] != '-')) {
    return std::nullopt;
  }
  TraceContext c;
  if (!parse_hex(h.substr(3, 32), c.trace_id.data(), 16) ||
      !parse_hex(h.substr(36, 16), c.span_id.data(), 8) ||
      !parse_hex(h.substr(53, 2), &c.flags, 1)) {
    return std::nullopt;
  }
  if (!c.valid()) return std::nullopt;
  return c;
}

std::string format_traceparent(const TraceContext& c) {
  return "00-" + to_hex(c.trace_id) + "-" + to_hex(c.span_id) + "-" + to_hex(&c.flags, 1);
}

uint64_t unix_now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// ---- Span ------------------------------------------------------------------------------------

Span::Span(Span&& other) noexcept
    : exporter_(std::move(other.exporter_)), data_(std::move(other.data_)) {
  other.exporter_ = nullptr;
}

Span& Span::operator=(Span&& other) noexcept {
  if (this != &other) {
    end();
    exporter_ = std::move(other.exporter_);
    data_ = std::move(other.data_);
    other.exporter_ = nullptr;
  }
  return *this;
}

void Span::set_attribute(std::string key, std::string value) {
  if (exporter_) data_.attributes.push_back({std::move(key), std::move(value)});
}
void Span::set_attribute(std::string key, int64_t value) {
  if (exporter_) data_.attributes.push_back({std::move(key), value});
}
void Span::set_attribute(std::string key, double value) {
  if (exporter_) data_.attributes.push_back({std::move(key), value});
}
void Span::set_attribute(std::string key, bool value) {
  if (exporter_) data_.attributes.push_back({std::move(key), value});
}

void Span::set_error(std::string message) {
  if (!exporter_) return;
  data_.error = true;
  data_.status_message = std::move(message);
}

void Span::end() {
  if (!exporter_) return;
  auto exporter = std::move(exporter_);
  exporter_ = nullptr;
  data_.end_unix_ns = unix_now_ns();
  exporter->export_span(std::move(data_));
}

// ---- Tracer ----------------------------------------------------------------------------------

Tracer::Tracer(std::shared_ptr<SpanExporter> exporter)
    : exporter_(std::move(exporter)), rng_(std::random_device{}()) {}

SpanId Tracer::new_span_id() {
  SpanId id{};
  std::lock_guard lock(mu_);
  while (all_zero(id)) {
    const uint64_t r = rng_();
    for (size_t i = 0; i < 8; ++i) id[i] = static_cast<uint8_t>(r >> (8 * i));
  }
  return id;
}

TraceContext Tracer::new_root() {
  TraceContext c;
  {
    std::lock_guard lock(mu_);
    while (all_zero(c.trace_id)) {
      const uint64_t a = rng_(), b = rng_();
      for (size_t i = 0; i < 8; ++i) {
        c.trace_id[i] = static_cast<uint8_t>(a >> (8 * i));
        c.trace_id[8 + i] = static_cast<uint8_t>(b >> (8 * i));
      }
    }
  }
  c.span_id = new_span_id();
  c.flags = 1;
  return c;
}

Span Tracer::start_span(std::string name, SpanKind kind, const TraceContext& parent) {
  Span span;
  const bool has_parent = parent.valid();
  if (!exporter_ || (has_parent && !parent.sampled())) {
    span.data_.context = parent;  // pass through: nothing recorded, the caller's trace continues
    return span;
  }
  span.exporter_ = exporter_;
  span.data_.name = std::move(name);
  span.data_.kind = kind;
  if (has_parent) {
    span.data_.context = parent;
    span.data_.context.span_id = new_span_id();
    span.data_.parent_span_id = parent.span_id;
  } else {
    span.data_.context = new_root();
  }
  span.data_.start_unix_ns = unix_now_ns();
  return span;
}

}  // namespace turbine::trace
