// SVG charts for bench reports (declared in report.h). Hand-written SVG 1.1: no dependencies, and
// any browser or rsvg-convert renders it.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "bench/report.h"

namespace turbine::bench {
namespace {

constexpr std::array<const char*, 8> kColors = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                                "#9467bd", "#8c564b", "#e377c2", "#17becf"};
constexpr int kPanelW = 380, kPanelH = 300, kMarginL = 60, kMarginR = 20, kMarginT = 40,
              kMarginB = 45;

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

// 1-2-5 ticks covering [0, hi].
std::vector<double> ticks(double hi, double* top) {
  if (!(hi > 0)) hi = 1;
  double raw = hi / 5;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  }
  std::vector<double> t;
  for (double v = 0; v <= hi + step * 0.999; v += step) t.push_back(v);
  *top = t.back();
  return t;
}

std::string tick_label(double v) {
  if (v == 0) return "0";
  if (std::fabs(v) >= 100) return fmt::format("{:.0f}", v);
  if (std::fabs(v) >= 1) return fmt::format("{:.4g}", v);
  return fmt::format("{:.3g}", v);
}

struct Series {
  std::string name;
  const char* color;
  std::vector<std::pair<double, double>> xy;
  bool markers = false;
  std::vector<std::string> point_labels;
  bool dashed = false;
};

// One panel at (x0, y0): axes, grid, series, legend.
std::string panel(int x0, int y0, const std::string& title, const std::string& xlabel,
                  const std::string& ylabel, const std::vector<Series>& series, double y_fixed_max,
                  const std::string& note) {
  double xmax = 0, ymax = y_fixed_max;
  for (const Series& s : series) {
    for (auto [x, y] : s.xy) {
      xmax = std::max(xmax, x);
      if (y_fixed_max <= 0) ymax = std::max(ymax, y);
    }
  }
  double xtop = 1, ytop = 1;
  std::vector<double> xt = ticks(xmax * 1.02, &xtop);
  std::vector<double> yt =
      y_fixed_max > 0 ? std::vector<double>{0, 0.25, 0.5, 0.75, 1.0} : ticks(ymax * 1.05, &ytop);
  if (y_fixed_max > 0) ytop = y_fixed_max;
  const int pw = kPanelW - kMarginL - kMarginR, ph = kPanelH - kMarginT - kMarginB;
  const int px = x0 + kMarginL, py = y0 + kMarginT;
  auto sx = [&](double x) { return px + x / xtop * pw; };
  auto sy = [&](double y) { return py + ph - y / ytop * ph; };
  std::string o;
  o += fmt::format(
      "<text x='{}' y='{}' font-size='14' font-weight='bold' text-anchor='middle'>{}</text>\n",
      px + pw / 2, y0 + 22, esc(title));
  o += fmt::format("<rect x='{}' y='{}' width='{}' height='{}' fill='#fafafa' stroke='#888'/>\n",
                   px, py, pw, ph);
  for (double t : xt) {
    o += fmt::format(
        "<line x1='{0:.1f}' y1='{1}' x2='{0:.1f}' y2='{2}' stroke='#ddd'/>"
        "<text x='{0:.1f}' y='{3}' font-size='10' text-anchor='middle'>{4}</text>\n",
        sx(t), py, py + ph, py + ph + 14, tick_label(t));
  }
  for (double t : yt) {
    o += fmt::format(
        "<line x1='{0}' y1='{1:.1f}' x2='{2}' y2='{1:.1f}' stroke='#ddd'/>"
        "<text x='{3}' y='{4:.1f}' font-size='10' text-anchor='end'>{5}</text>\n",
        px, sy(t), px + pw, px - 5, sy(t) + 3, tick_label(t));
  }
  o += fmt::format("<text x='{}' y='{}' font-size='11' text-anchor='middle'>{}</text>\n",
                   px + pw / 2, py + ph + 32, esc(xlabel));
  o += fmt::format(
      "<text x='{0}' y='{1}' font-size='11' text-anchor='middle' transform='rotate(-90 {0} "
      "{1})'>{2}</text>\n",
      x0 + 16, py + ph / 2, esc(ylabel));
  for (const Series& s : series) {
    if (s.xy.empty()) continue;
    std::string pts;
    for (auto [x, y] : s.xy) pts += fmt::format("{:.1f},{:.1f} ", sx(x), sy(y));
    o += fmt::format("<polyline fill='none' stroke='{}' stroke-width='1.8'{} points='{}'/>\n",
                     s.color, s.dashed ? " stroke-dasharray='5,3'" : "", pts);
    if (s.markers) {
      for (size_t i = 0; i < s.xy.size(); ++i) {
        o += fmt::format("<circle cx='{:.1f}' cy='{:.1f}' r='3' fill='{}'/>", sx(s.xy[i].first),
                         sy(s.xy[i].second), s.color);
        if (i < s.point_labels.size()) {
          o += fmt::format("<text x='{:.1f}' y='{:.1f}' font-size='9' fill='{}'>{}</text>",
                           sx(s.xy[i].first) + 4, sy(s.xy[i].second) - 4, s.color,
                           esc(s.point_labels[i]));
        }
      }
      o += "\n";
    }
  }
  // Legend, bottom right inside the plot area.
  int ly = py + ph - 10 - 14 * static_cast<int>(series.size() - 1);
  for (const Series& s : series) {
    o += fmt::format(
        "<line x1='{}' y1='{}' x2='{}' y2='{}' stroke='{}' stroke-width='2'{}/>"
        "<text x='{}' y='{}' font-size='10'>{}</text>\n",
        px + pw - 130, ly - 3, px + pw - 112, ly - 3, s.color,
        s.dashed ? " stroke-dasharray='5,3'" : "", px + pw - 108, ly, esc(s.name));
    ly += 14;
  }
  if (!note.empty()) {
    o += fmt::format("<text x='{}' y='{}' font-size='9' fill='#666' text-anchor='end'>{}</text>\n",
                     px + pw, py - 4, esc(note));
  }
  return o;
}

// Empirical CDF, thinned to at most ~300 points, cut at the 99.5th percentile so one outlier
// does not squash the curve (the cut is written on the panel).
std::vector<std::pair<double, double>> cdf(std::vector<double> v, double* cut) {
  std::vector<std::pair<double, double>> out;
  if (v.empty()) return out;
  std::sort(v.begin(), v.end());
  size_t keep = v.size() >= 200 ? static_cast<size_t>(std::ceil(v.size() * 0.995)) : v.size();
  *cut = std::max(*cut, v[keep - 1]);
  size_t step = std::max<size_t>(1, keep / 300);
  // A step function: the fraction jumps at each sample (drawn as a vertical then a flat segment).
  out.emplace_back(v.front(), 0.0);
  double y = 0;
  for (size_t i = 0; i < keep; i += step) {
    out.emplace_back(v[i], y);
    y = static_cast<double>(i + 1) / static_cast<double>(v.size());
    out.emplace_back(v[i], y);
  }
  out.emplace_back(v[keep - 1], static_cast<double>(keep) / static_cast<double>(v.size()));
  return out;
}

}  // namespace

std::string to_svg(const BenchReport& r) {
  const bool sweep = r.points.size() > 1;
  const int width = 3 * kPanelW + 20;
  const int height = 60 + kPanelH + (sweep ? kPanelH + 10 : 0) + 10;
  std::string o = fmt::format(
      "<?xml version='1.0' encoding='UTF-8'?>\n"
      "<svg xmlns='http://www.w3.org/2000/svg' width='{0}' height='{1}' viewBox='0 0 {0} {1}' "
      "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'>\n"
      "<rect width='100%' height='100%' fill='white'/>\n",
      width, height);
  std::string subtitle =
      fmt::format("{} | model {} | {} workload", r.target_url, r.model, r.workload);
  o += fmt::format("<text x='10' y='22' font-size='16' font-weight='bold'>turbine bench{}</text>\n",
                   r.interrupted ? " (interrupted: partial results)" : "");
  o += fmt::format("<text x='10' y='42' font-size='11' fill='#444'>{}</text>\n", esc(subtitle));

  const char* names[3] = {"TTFT", "ITL", "E2E latency"};
  for (int m = 0; m < 3; ++m) {
    std::vector<Series> series;
    double cut = 0;
    for (size_t pi = 0; pi < r.points.size(); ++pi) {
      std::vector<double> v;
      for (const RequestResult& q : r.points[pi].results) {
        if (!q.ok) continue;
        if (m == 0 && q.ttft_ms() >= 0) v.push_back(q.ttft_ms());
        if (m == 1) v.insert(v.end(), q.itl_ms.begin(), q.itl_ms.end());
        if (m == 2) v.push_back(q.e2e_ms());
      }
      Series s;
      s.name = r.points[pi].config.label;
      s.color = kColors[pi % kColors.size()];
      s.xy = cdf(std::move(v), &cut);
      series.push_back(std::move(s));
    }
    o += panel(10 + m * kPanelW, 50, std::string(names[m]) + " CDF", "milliseconds",
               "fraction of " + std::string(m == 1 ? "token gaps" : "requests"), series, 1.0,
               "x up to p99.5");
  }
  if (sweep) {
    const char* lat_names[2] = {"TTFT", "ITL"};
    for (int m = 0; m < 2; ++m) {
      Series p50, p99;
      p50.name = std::string(lat_names[m]) + " p50";
      p99.name = std::string(lat_names[m]) + " p99";
      p50.color = kColors[0];
      p99.color = kColors[1];
      p99.dashed = true;
      p50.markers = p99.markers = true;
      for (const PointReport& p : r.points) {
        const Distribution& d = m == 0 ? p.summary.ttft_ms : p.summary.itl_ms;
        std::string label =
            p.config.concurrency > 0 ? "c=" + std::to_string(p.config.concurrency) : p.config.label;
        p50.xy.emplace_back(p.summary.output_tokens_per_s, d.p50);
        p99.xy.emplace_back(p.summary.output_tokens_per_s, d.p99);
        p50.point_labels.push_back(label);
        p99.point_labels.push_back(label);
      }
      o += panel(10 + m * kPanelW, 60 + kPanelH, std::string(lat_names[m]) + " vs throughput",
                 "output tokens/s", "milliseconds", {p50, p99}, 0, "");
    }
    Series goodput;
    goodput.name = "requests/s";
    goodput.color = kColors[2];
    goodput.markers = true;
    Series good;
    good.name = "goodput req/s";
    good.color = kColors[3];
    good.markers = true;
    good.dashed = true;
    for (const PointReport& p : r.points) {
      double x = p.config.concurrency > 0 ? p.config.concurrency : p.config.request_rate;
      goodput.xy.emplace_back(x, p.summary.requests_per_s);
      if (!r.options.slo.empty()) good.xy.emplace_back(x, p.summary.goodput_requests_per_s);
    }
    std::vector<Series> s = {goodput};
    if (!good.xy.empty()) s.push_back(good);
    o += panel(10 + 2 * kPanelW, 60 + kPanelH, "Throughput vs load", "concurrency", "requests/s", s,
               0, "");
  }
  o += "</svg>\n";
  return o;
}

}  // namespace turbine::bench
