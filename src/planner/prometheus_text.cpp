#include "planner/prometheus_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>

namespace turbine::planner {
namespace {

bool name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool name_char(char c) {
  return name_start(c) || (c >= '0' && c <= '9');
}
bool label_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool label_char(char c) {
  return label_start(c) || (c >= '0' && c <= '9');
}

Status line_error(size_t line, std::string_view what) {
  return invalid_argument(fmt::format("line {}: {}", line, what), "metrics");
}

// Go's strconv.ParseFloat forms that exporters write: decimal/exponent, NaN, +Inf, -Inf, Inf.
std::optional<double> parse_value(std::string_view s) {
  if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (s == "+Inf" || s == "Inf") return std::numeric_limits<double>::infinity();
  if (s == "-Inf") return -std::numeric_limits<double>::infinity();
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || std::isnan(v) || std::isinf(v))
    return std::nullopt;
  return v;
}

// The family a sample belongs to: histogram/summary series carry suffixes.
std::string_view family_of(std::string_view name,
                           const std::map<std::string, std::string, std::less<>>& types) {
  for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      std::string_view base = name.substr(0, name.size() - suffix.size());
      auto it = types.find(base);
      if (it != types.end() && (it->second == "histogram" || it->second == "summary")) return base;
    }
  }
  return name;
}

bool matches(const Labels& labels, const Labels& match) {
  for (const auto& want : match) {  // no structured binding: clang 14 cannot capture one
    auto it = std::find_if(labels.begin(), labels.end(),
                           [&](const auto& l) { return l.first == want.first; });
    if (it == labels.end() || it->second != want.second) return false;
  }
  return true;
}

}  // namespace

Result<MetricSet> MetricSet::parse(std::string_view text) {
  MetricSet out;
  std::map<std::string, std::string, std::less<>> types;
  std::set<std::string, std::less<>> seen_families;  // families with samples so far
  std::set<std::string> series;                      // name + labels, for duplicates
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos) continue;
    line.remove_prefix(first);
    if (line.front() == '#') {
      std::string_view rest = line.substr(1);
      rest.remove_prefix(std::min(rest.find_first_not_of(" \t"), rest.size()));
      const bool is_type = rest.starts_with("TYPE ") || rest.starts_with("TYPE\t");
      const bool is_help = rest.starts_with("HELP ") || rest.starts_with("HELP\t");
      if (!is_type && !is_help) continue;  // a plain comment
      rest.remove_prefix(4);
      rest.remove_prefix(std::min(rest.find_first_not_of(" \t"), rest.size()));
      size_t end = 0;
      while (end < rest.size() && name_char(rest[end])) ++end;
      if (end == 0 || !name_start(rest[0]))
        return line_error(line_no, "HELP/TYPE without a valid metric name");
      std::string name(rest.substr(0, end));
      if (end < rest.size() && rest[end] != ' ' && rest[end] != '\t')
        return line_error(line_no, "HELP/TYPE without a valid metric name");
      if (is_help) continue;
      std::string_view type = rest.substr(end);
      type.remove_prefix(std::min(type.find_first_not_of(" \t"), type.size()));
      while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
      if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
          type != "untyped") {
        return line_error(line_no, fmt::format("unknown metric type '{}'", type));
      }
      if (types.count(name)) return line_error(line_no, "second TYPE line for " + name);
      if (seen_families.count(name))
        return line_error(line_no, "TYPE line for " + name + " after its samples");
      types.emplace(name, std::string(type));
      continue;
    }
    // A sample: name [{labels}] value [timestamp]
    Sample s;
    size_t i = 0;
    if (!name_start(line[0])) return line_error(line_no, "expected a metric name");
    while (i < line.size() && name_char(line[i])) ++i;
    s.name = std::string(line.substr(0, i));
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (true) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        if (i >= line.size() || !label_start(line[i]))
          return line_error(line_no, "expected a label name");
        size_t b = i;
        while (i < line.size() && label_char(line[i])) ++i;
        std::string label(line.substr(b, i - b));
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        if (i >= line.size() || line[i] != '=') return line_error(line_no, "expected '='");
        ++i;
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        if (i >= line.size() || line[i] != '"')
          return line_error(line_no, "expected a quoted label value");
        ++i;
        std::string value;
        bool closed = false;
        while (i < line.size()) {
          char c = line[i++];
          if (c == '"') {
            closed = true;
            break;
          }
          if (c == '\\') {
            if (i >= line.size()) break;
            char e = line[i++];
            if (e == 'n') {
              value += '\n';
            } else if (e == '\\' || e == '"') {
              value += e;
            } else {
              return line_error(line_no, fmt::format("invalid escape '\\{}' in a label value", e));
            }
          } else {
            value += c;
          }
        }
        if (!closed) return line_error(line_no, "unterminated label value");
        for (const auto& [k, v] : s.labels) {
          if (k == label) return line_error(line_no, "label " + label + " given twice");
        }
        s.labels.emplace_back(std::move(label), std::move(value));
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        if (i < line.size() && line[i] == ',') {
          ++i;
          continue;
        }
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        return line_error(line_no, "expected ',' or '}' after a label");
      }
    }
    if (i >= line.size() || (line[i] != ' ' && line[i] != '\t'))
      return line_error(line_no, "expected a space before the value");
    std::string_view rest = line.substr(i);
    rest.remove_prefix(rest.find_first_not_of(" \t"));
    size_t sp = rest.find_first_of(" \t");
    std::string_view value_text = rest.substr(0, sp);
    std::optional<double> value = parse_value(value_text);
    if (!value) return line_error(line_no, fmt::format("invalid value '{}'", value_text));
    s.value = *value;
    if (sp != std::string_view::npos) {
      std::string_view ts = rest.substr(sp);
      ts.remove_prefix(std::min(ts.find_first_not_of(" \t"), ts.size()));
      while (!ts.empty() && (ts.back() == ' ' || ts.back() == '\t')) ts.remove_suffix(1);
      if (!ts.empty()) {
        int64_t t = 0;
        auto [p, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), t);
        if (ec != std::errc() || p != ts.data() + ts.size())
          return line_error(line_no, fmt::format("invalid timestamp '{}'", ts));
        s.timestamp_ms = t;
      }
    }
    std::sort(s.labels.begin(), s.labels.end());
    const std::string_view family = family_of(s.name, types);
    auto type_it = types.find(family);
    if (type_it != types.end() && type_it->second == "histogram" && s.name.ends_with("_bucket") &&
        std::none_of(s.labels.begin(), s.labels.end(),
                     [](const auto& l) { return l.first == "le"; }))
      return line_error(line_no, "histogram bucket without an 'le' label");
    std::string key = s.name;
    for (const auto& [k, v] : s.labels) key += fmt::format("\x1f{}\x1e{}", k, v);
    if (!series.insert(std::move(key)).second)
      return line_error(line_no, "series given twice: " + s.name);
    seen_families.emplace(family);
    out.samples_.push_back(std::move(s));
  }
  for (auto& [k, v] : types) out.types_.emplace_back(k, v);
  return out;
}

std::optional<std::string> MetricSet::type(std::string_view family) const {
  for (const auto& [k, v] : types_) {
    if (k == family) return v;
  }
  return std::nullopt;
}

std::optional<double> MetricSet::sum(std::string_view name, const Labels& match) const {
  std::optional<double> total;
  for (const Sample& s : samples_) {
    if (s.name != name || !matches(s.labels, match)) continue;
    total = total.value_or(0.0) + s.value;
  }
  return total;
}

std::vector<std::string> MetricSet::label_values(std::string_view name,
                                                 std::string_view label) const {
  std::set<std::string> values;
  for (const Sample& s : samples_) {
    if (s.name != name) continue;
    for (const auto& [k, v] : s.labels) {
      if (k == label) values.insert(v);
    }
  }
  return {values.begin(), values.end()};
}

std::vector<std::pair<double, double>> MetricSet::buckets(std::string_view family,
                                                          const Labels& match) const {
  const std::string name = std::string(family) + "_bucket";
  std::map<double, double> by_le;
  for (const Sample& s : samples_) {
    if (s.name != name || !matches(s.labels, match)) continue;
    for (const auto& [k, v] : s.labels) {
      if (k != "le") continue;
      std::optional<double> le = parse_value(v);
      if (le) by_le[*le] += s.value;
    }
  }
  return {by_le.begin(), by_le.end()};
}

}  // namespace turbine::planner
