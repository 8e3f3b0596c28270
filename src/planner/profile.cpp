#include "planner/profile.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace turbine::planner {
namespace {

namespace json = boost::json;

// Piecewise-linear y(x) over points sorted by x; the first value below them, the last segment's
// slope beyond (a lone point: constant).
template <typename P, typename X, typename Y>
double interpolate(const std::vector<P>& pts, double x, X get_x, Y get_y) {
  if (pts.empty()) return 0;
  if (pts.size() == 1 || x <= get_x(pts.front())) return get_y(pts.front());
  for (size_t i = 1; i < pts.size(); ++i) {
    if (x <= get_x(pts[i]) || i + 1 == pts.size()) {
      const double x0 = get_x(pts[i - 1]), x1 = get_x(pts[i]);
      const double y0 = get_y(pts[i - 1]), y1 = get_y(pts[i]);
      if (x1 <= x0) return y1;
      return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
    }
  }
  return get_y(pts.back());
}

Result<double> number(const json::object& o, std::string_view key, const std::string& where) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_number())
    return invalid_argument(fmt::format("profile: {}.{} must be a number", where, key),
                            where + "." + std::string(key));
  double d = v->to_number<double>();
  if (!std::isfinite(d))
    return invalid_argument(fmt::format("profile: {}.{} must be finite", where, key),
                            where + "." + std::string(key));
  return d;
}

}  // namespace

Status Profile::validate() const {
  if (!(time_scale > 0)) return invalid_argument("profile: time_scale must be > 0", "time_scale");
  if (prefill.empty()) return invalid_argument("profile: no prefill points", "prefill");
  for (size_t i = 0; i < prefill.size(); ++i) {
    if (!(prefill[i].isl > 0) || !(prefill[i].ttft_ms > 0))
      return invalid_argument(fmt::format("profile: prefill[{}] needs isl > 0 and ttft_ms > 0", i),
                              fmt::format("prefill[{}]", i));
    if (i > 0 && prefill[i].isl <= prefill[i - 1].isl)
      return invalid_argument("profile: prefill points must be sorted by isl, ascending",
                              fmt::format("prefill[{}]", i));
  }
  if (decode.empty()) return invalid_argument("profile: no decode curves", "decode");
  for (size_t c = 0; c < decode.size(); ++c) {
    const DecodeCurve& curve = decode[c];
    if (!(curve.context > 0) || curve.points.empty())
      return invalid_argument(
          fmt::format("profile: decode[{}] needs context > 0 and at least one point", c),
          fmt::format("decode[{}]", c));
    if (c > 0 && curve.context <= decode[c - 1].context)
      return invalid_argument("profile: decode curves must be sorted by context, ascending",
                              fmt::format("decode[{}]", c));
    for (size_t i = 0; i < curve.points.size(); ++i) {
      const DecodePoint& p = curve.points[i];
      if (!(p.concurrency > 0) || !(p.itl_ms > 0))
        return invalid_argument(
            fmt::format("profile: decode[{}].points[{}] needs concurrency > 0, itl_ms > 0", c, i),
            fmt::format("decode[{}].points[{}]", c, i));
      if (i > 0 && p.concurrency <= curve.points[i - 1].concurrency)
        return invalid_argument("profile: decode points must be sorted by concurrency, ascending",
                                fmt::format("decode[{}].points[{}]", c, i));
    }
  }
  return Status::ok();
}

double Profile::prefill_seconds(double isl) const {
  return std::max(0.0, interpolate(
                           prefill, isl, [](const PrefillPoint& p) { return p.isl; },
                           [](const PrefillPoint& p) { return p.ttft_ms; })) /
         1000.0;
}

double Profile::decode_itl_seconds(double concurrency, double context) const {
  auto at = [&](const DecodeCurve& c) {
    return interpolate(
        c.points, concurrency, [](const DecodePoint& p) { return p.concurrency; },
        [](const DecodePoint& p) { return p.itl_ms; });
  };
  // Linear in context between the two curves around it (edge slopes beyond).
  struct CtxPoint {
    double context, itl_ms;
  };
  std::vector<CtxPoint> by_context;
  for (const DecodeCurve& c : decode) by_context.push_back({c.context, at(c)});
  double ms = interpolate(
      by_context, context, [](const CtxPoint& p) { return p.context; },
      [](const CtxPoint& p) { return p.itl_ms; });
  // Never below the fastest measured step (extrapolating down a steep slope).
  double floor_ms = by_context.empty() ? 0 : by_context.front().itl_ms;
  for (const CtxPoint& p : by_context) floor_ms = std::min(floor_ms, p.itl_ms);
  return std::max(ms, floor_ms) / 1000.0;
}

double Profile::max_decode_concurrency(double itl_s, double context) const {
  double k_max = 0;
  for (const DecodeCurve& c : decode) k_max = std::max(k_max, c.points.back().concurrency);
  if (k_max <= 0 || decode_itl_seconds(1.0, context) > itl_s) return 0;
  if (decode_itl_seconds(k_max, context) <= itl_s) return k_max;
  double lo = 1.0, hi = k_max;  // itl(lo) <= itl_s < itl(hi); ITL grows with concurrency
  for (int i = 0; i < 50; ++i) {
    double mid = 0.5 * (lo + hi);
    (decode_itl_seconds(mid, context) <= itl_s ? lo : hi) = mid;
  }
  return lo;
}

double Profile::decode_tokens_per_s(double itl_s, double context) const {
  double k = max_decode_concurrency(itl_s, context);
  if (k <= 0) return 0;
  return k / decode_itl_seconds(k, context);
}

Result<Profile> profile_from_json(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object())
    return invalid_argument("profile: not a JSON object" + (ec ? ": " + ec.message() : ""));
  const json::object& o = v.as_object();
  Profile p;
  for (const auto& kv : o) {
    const std::string_view k = kv.key();
    if (k != "version" && k != "time_scale" && k != "source" && k != "prefill" && k != "decode")
      return invalid_argument(fmt::format("profile: unknown key '{}'", k), std::string(k));
  }
  if (const json::value* ver = o.if_contains("version");
      !ver || !ver->is_int64() || ver->as_int64() != Profile::kVersion)
    return invalid_argument(fmt::format("profile: version must be {}", Profile::kVersion),
                            "version");
  if (o.contains("time_scale")) {
    TURBINE_ASSIGN_OR_RETURN(p.time_scale, number(o, "time_scale", "profile"));
  }
  if (const json::value* s = o.if_contains("source"); s && s->is_string())
    p.source = std::string(s->as_string());
  const json::value* pre = o.if_contains("prefill");
  if (!pre || !pre->is_array())
    return invalid_argument("profile: prefill must be a list", "prefill");
  for (size_t i = 0; i < pre->as_array().size(); ++i) {
    const json::value& e = pre->as_array()[i];
    const std::string where = fmt::format("prefill[{}]", i);
    if (!e.is_object()) return invalid_argument("profile: " + where + " must be an object", where);
    PrefillPoint pt;
    TURBINE_ASSIGN_OR_RETURN(pt.isl, number(e.as_object(), "isl", where));
    TURBINE_ASSIGN_OR_RETURN(pt.ttft_ms, number(e.as_object(), "ttft_ms", where));
    p.prefill.push_back(pt);
  }
  const json::value* dec = o.if_contains("decode");
  if (!dec || !dec->is_array()) return invalid_argument("profile: decode must be a list", "decode");
  for (size_t c = 0; c < dec->as_array().size(); ++c) {
    const json::value& e = dec->as_array()[c];
    const std::string where = fmt::format("decode[{}]", c);
    if (!e.is_object()) return invalid_argument("profile: " + where + " must be an object", where);
    DecodeCurve curve;
    TURBINE_ASSIGN_OR_RETURN(curve.context, number(e.as_object(), "context", where));
    const json::value* pts = e.as_object().if_contains("points");
    if (!pts || !pts->is_array())
      return invalid_argument("profile: " + where + ".points must be a list", where + ".points");
    for (size_t i = 0; i < pts->as_array().size(); ++i) {
      const json::value& pe = pts->as_array()[i];
      const std::string pw = fmt::format("{}.points[{}]", where, i);
      if (!pe.is_object()) return invalid_argument("profile: " + pw + " must be an object", pw);
      DecodePoint dp;
      TURBINE_ASSIGN_OR_RETURN(dp.concurrency, number(pe.as_object(), "concurrency", pw));
      TURBINE_ASSIGN_OR_RETURN(dp.itl_ms, number(pe.as_object(), "itl_ms", pw));
      curve.points.push_back(dp);
    }
    p.decode.push_back(std::move(curve));
  }
  TURBINE_RETURN_IF_ERROR(p.validate());
  return p;
}

std::string to_json(const Profile& p) {
  json::object o;
  o["version"] = Profile::kVersion;
  o["time_scale"] = p.time_scale;
  o["source"] = p.source;
  json::array pre;
  for (const PrefillPoint& pt : p.prefill)
    pre.push_back({{"isl", pt.isl}, {"ttft_ms", pt.ttft_ms}});
  o["prefill"] = std::move(pre);
  json::array dec;
  for (const DecodeCurve& c : p.decode) {
    json::array pts;
    for (const DecodePoint& dp : c.points)
      pts.push_back({{"concurrency", dp.concurrency}, {"itl_ms", dp.itl_ms}});
    dec.push_back({{"context", c.context}, {"points", std::move(pts)}});
  }
  o["decode"] = std::move(dec);
  return json::serialize(o) + "\n";
}

Result<Profile> load_profile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("profile: cannot read " + path, "profile");
  std::stringstream ss;
  ss << in.rdbuf();
  auto p = profile_from_json(ss.str());
  if (!p) return invalid_argument(path + ": " + p.status().message(), p.status().field());
  return p;
}

}  // namespace turbine::planner
