#include "semantic/metrics.h"

#include <cstdio>

namespace turbine::semantic {

void Histogram::observe(double seconds) {
  size_t i = 0;
  while (i < kLatencyBuckets.size() && seconds > kLatencyBuckets[i]) ++i;
  ++counts[i];
  ++count;
  sum += seconds;
}

void SemanticMetrics::decision(const std::string& d, const std::string& model) {
  std::lock_guard<std::mutex> lock(mu_);
  ++s_.decisions[{d, model}];
}
void SemanticMetrics::block(const std::string& guard, const std::string& type) {
  std::lock_guard<std::mutex> lock(mu_);
  ++s_.blocks[{guard, type}];
}
namespace {
template <typename Map>
typename Map::mapped_type& slot(Map& m, std::string_view key) {
  auto it = m.find(key);
  if (it == m.end()) it = m.emplace(std::string(key), typename Map::mapped_type{}).first;
  return it->second;
}
}  // namespace

void SemanticMetrics::redaction(std::string_view type) {
  std::lock_guard<std::mutex> lock(mu_);
  ++slot(s_.redactions, type);
}
void SemanticMetrics::signal_latency(std::string_view signal, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  slot(s_.signal_latency, signal).observe(seconds);
}
void SemanticMetrics::stage_latency(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  s_.stage_latency.observe(seconds);
}
void SemanticMetrics::signal_error(std::string_view signal) {
  std::lock_guard<std::mutex> lock(mu_);
  ++slot(s_.signal_errors, signal);
}
void SemanticMetrics::signal_unavailable(std::string_view signal, std::string_view reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++s_.signal_unavailable[{std::string(signal), std::string(reason)}];
}
void SemanticMetrics::reload(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  ++(ok ? s_.reloads_ok : s_.reloads_failed);
}

MetricsSnapshot SemanticMetrics::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return s_;
}

namespace {

// Label values escaped per the exposition format.
std::string esc(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\' || c == '"') o.push_back('\\');
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o.push_back(c);
  }
  return o;
}

void head(std::string& o, const char* name, const char* type, const char* help) {
  o += "# HELP ";
  o += name;
  o += ' ';
  o += help;
  o += "\n# TYPE ";
  o += name;
  o += ' ';
  o += type;
  o += '\n';
}

void sample(std::string& o, const std::string& name, const std::string& labels, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  o += name;
  if (!labels.empty()) o += "{" + labels + "}";
  o += ' ';
  o += buf;
  o += '\n';
}

void histogram(std::string& o, const char* name, const std::string& labels, const Histogram& h) {
  std::string prefix = labels.empty() ? "" : labels + ",";
  uint64_t cum = 0;
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    cum += h.counts[i];
    char le[32];
    std::snprintf(le, sizeof(le), "%g", kLatencyBuckets[i]);
    sample(o, std::string(name) + "_bucket", prefix + "le=\"" + le + "\"",
           static_cast<double>(cum));
  }
  sample(o, std::string(name) + "_bucket", prefix + "le=\"+Inf\"", static_cast<double>(h.count));
  sample(o, std::string(name) + "_sum", labels, h.sum);
  sample(o, std::string(name) + "_count", labels, static_cast<double>(h.count));
}

}  // namespace

std::string prometheus_text(const MetricsSnapshot& s) {
  std::string o;
  head(o, kMetricDecisions, "counter", "Virtual-model requests routed, by decision and model.");
  for (const auto& [k, v] : s.decisions) {
    sample(o, kMetricDecisions, "decision=\"" + esc(k.first) + "\",model=\"" + esc(k.second) + "\"",
           static_cast<double>(v));
  }
  head(o, kMetricSignalLatency, "histogram", "Latency of each signal evaluation.");
  for (const auto& [k, h] : s.signal_latency) {
    histogram(o, kMetricSignalLatency, "signal=\"" + esc(k) + "\"", h);
  }
  head(o, kMetricStageLatency, "histogram", "Latency of the whole semantic stage per request.");
  histogram(o, kMetricStageLatency, "", s.stage_latency);
  head(o, kMetricBlocks, "counter", "Requests blocked, by guard and type.");
  for (const auto& [k, v] : s.blocks) {
    sample(o, kMetricBlocks, "guard=\"" + esc(k.first) + "\",type=\"" + esc(k.second) + "\"",
           static_cast<double>(v));
  }
  head(o, kMetricRedactions, "counter", "PII spans redacted, by type.");
  for (const auto& [k, v] : s.redactions) {
    sample(o, kMetricRedactions, "type=\"" + esc(k) + "\"", static_cast<double>(v));
  }
  head(o, kMetricCacheHits, "counter", "Semantic cache hits, by tier.");
  sample(o, kMetricCacheHits, "tier=\"exact\"", static_cast<double>(s.cache_exact_hits));
  sample(o, kMetricCacheHits, "tier=\"semantic\"", static_cast<double>(s.cache_semantic_hits));
  head(o, kMetricCacheMisses, "counter", "Semantic cache misses.");
  sample(o, kMetricCacheMisses, "", static_cast<double>(s.cache_misses));
  head(o, kMetricCacheLiteralRejections, "counter",
       "Similar cached entries refused because numbers or quoted literals differed.");
  sample(o, kMetricCacheLiteralRejections, "", static_cast<double>(s.cache_literal_rejections));
  head(o, kMetricCacheEntries, "gauge", "Entries in the semantic cache.");
  sample(o, kMetricCacheEntries, "", static_cast<double>(s.cache_entries));
  head(o, kMetricCacheEvictions, "counter", "Semantic cache evictions, by reason.");
  sample(o, kMetricCacheEvictions, "reason=\"lru\"", static_cast<double>(s.cache_evictions_lru));
  sample(o, kMetricCacheEvictions, "reason=\"ttl\"", static_cast<double>(s.cache_evictions_ttl));
  head(o, kMetricConfigReloads, "counter", "Semantic config reloads, by result.");
  sample(o, kMetricConfigReloads, "result=\"ok\"", static_cast<double>(s.reloads_ok));
  sample(o, kMetricConfigReloads, "result=\"failed\"", static_cast<double>(s.reloads_failed));
  head(o, kMetricSignalErrors, "counter", "Model-backed signal calls that failed.");
  for (const auto& [k, v] : s.signal_errors) {
    sample(o, kMetricSignalErrors, "signal=\"" + esc(k) + "\"", static_cast<double>(v));
  }
  head(o, kMetricSignalUnavailable, "counter",
       "Model-backed signal calls whose model was not there, by signal and reason.");
  for (const auto& [k, v] : s.signal_unavailable) {
    sample(o, kMetricSignalUnavailable,
           "signal=\"" + esc(k.first) + "\",reason=\"" + esc(k.second) + "\"",
           static_cast<double>(v));
  }
  if (!s.encoder_models.empty()) {
    head(o, kMetricEncoderModelAvailable, "gauge",
         "Whether the model of each encoder_models key can be called (1) or not (0).");
    for (const auto& [k, up] : s.encoder_models) {
      sample(o, kMetricEncoderModelAvailable,
             "key=\"" + esc(k.first) + "\",model=\"" + esc(k.second) + "\"", up ? 1.0 : 0.0);
    }
  }
  return o;
}

}  // namespace turbine::semantic
