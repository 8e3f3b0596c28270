#include "structured/json_fragments.h"

#include <cmath>
#include <map>
#include <string>

#include "structured/regex.h"

namespace turbine::structured::json {
namespace {

std::unique_ptr<Expr> text(std::string s) {
  return Expr::text_of(std::move(s));
}

std::unique_ptr<Expr> digits(char lo, char hi, int count) {
  auto cls =
      Expr::class_of(CodepointSet::range(static_cast<uint32_t>(lo), static_cast<uint32_t>(hi)));
  if (count == 1) return cls;
  auto rep = Expr::make(Expr::Kind::kRepeat);
  rep->min = rep->max = count;
  rep->children.push_back(std::move(cls));
  return rep;
}

std::unique_ptr<Expr> seq2(std::unique_ptr<Expr> a, std::unique_ptr<Expr> b) {
  auto s = Expr::make(Expr::Kind::kSeq);
  s->children.push_back(std::move(a));
  s->children.push_back(std::move(b));
  return s;
}

// Equal-length digit strings lo <= hi: every digit string between them.
std::unique_ptr<Expr> same_length(const std::string& lo, const std::string& hi) {
  const size_t n = lo.size();
  if (n == 0) return Expr::make(Expr::Kind::kEmpty);
  if (lo == hi) return text(lo);
  if (lo[0] == hi[0]) return seq2(text(lo.substr(0, 1)), same_length(lo.substr(1), hi.substr(1)));
  const std::string rest_lo = lo.substr(1), rest_hi = hi.substr(1);
  const bool lo_zeros = rest_lo.find_first_not_of('0') == std::string::npos;
  const bool hi_nines = rest_hi.find_first_not_of('9') == std::string::npos;
  auto alt = Expr::make(Expr::Kind::kAlt);
  if (!lo_zeros) {
    alt->children.push_back(
        seq2(text(lo.substr(0, 1)), same_length(rest_lo, std::string(n - 1, '9'))));
  }
  const char first_lo = static_cast<char>(lo[0] + (lo_zeros ? 0 : 1));
  const char first_hi = static_cast<char>(hi[0] - (hi_nines ? 0 : 1));
  if (first_lo <= first_hi) {
    auto mid = digits(first_lo, first_hi, 1);
    if (n > 1) mid = seq2(std::move(mid), digits('0', '9', static_cast<int>(n - 1)));
    alt->children.push_back(std::move(mid));
  }
  if (!hi_nines) {
    alt->children.push_back(
        seq2(text(hi.substr(0, 1)), same_length(std::string(n - 1, '0'), rest_hi)));
  }
  if (alt->children.size() == 1) return std::move(alt->children[0]);
  return alt;
}

uint64_t pow10(int n) {
  uint64_t v = 1;
  for (int i = 0; i < n; ++i) v *= 10;
  return v;
}

// Decimal text of the integers in [lo, hi], no leading zeros.
std::unique_ptr<Expr> nonneg_range(uint64_t lo, uint64_t hi) {
  auto alt = Expr::make(Expr::Kind::kAlt);
  const auto len_of = [](uint64_t v) { return static_cast<int>(std::to_string(v).size()); };
  for (int len = len_of(lo); len <= len_of(hi); ++len) {
    const uint64_t a = std::max(lo, len == 1 ? uint64_t{0} : pow10(len - 1));
    const uint64_t b = std::min(hi, pow10(len) - 1);
    if (a <= b) alt->children.push_back(same_length(std::to_string(a), std::to_string(b)));
  }
  if (alt->children.size() == 1) return std::move(alt->children[0]);
  return alt;
}

constexpr int64_t kLimit = 1'000'000'000'000'000'000;  // |bounds| we enforce exactly

std::unique_ptr<Expr> fixed_regex(const char* pattern) {
  auto e = parse_regex(pattern, RegexMode::kFullMatch, CompileLimits{});
  return std::move(*e);  // our own patterns always parse
}

}  // namespace

Frag ws(NfaBuilder& b, const JsonGrammarOptions& o) {
  if (o.whitespace == JsonGrammarOptions::Whitespace::kCompact || o.max_whitespace <= 0) {
    return b.empty();
  }
  return b.repeat(
      [&] {
        const int32_t s = b.new_state();
        const int32_t e = b.new_state();
        b.add_bytes(s, ' ', ' ', e);
        b.add_bytes(s, '\n', '\n', e);
        b.add_bytes(s, '\t', '\t', e);
        return Frag{s, e};
      },
      0, o.max_whitespace);
}

Frag string_char(NfaBuilder& b, bool canonical) {
  if (canonical) return lower_class(b, CodepointSet::all(), Encoding::kJsonString);
  CodepointSet raw = CodepointSet::range(0x20, kMaxCodePoint);
  raw = raw.minus(CodepointSet::single('"'));
  raw = raw.minus(CodepointSet::single('\\'));
  const Frag r = b.codepoints(raw);
  // \ then one of "\/bfnrt, or u and four hex digits that are not a surrogate (D800-DFFF).
  const int32_t bs = b.new_state();
  const int32_t end = b.new_state();
  const int32_t esc = b.new_state();
  b.add_bytes(bs, '\\', '\\', esc);
  for (char c : std::string("\"\\/bfnrt")) {
    b.add_bytes(esc, static_cast<uint8_t>(c), static_cast<uint8_t>(c), end);
  }
  const int32_t u = b.new_state();
  b.add_bytes(esc, 'u', 'u', u);
  const auto hex_to = [&](int32_t from, int32_t to, bool skip_d) {
    b.add_bytes(from, '0', '9', to);
    b.add_bytes(from, 'a', skip_d ? 'c' : 'f', to);
    b.add_bytes(from, 'A', skip_d ? 'C' : 'F', to);
    if (skip_d) {
      b.add_bytes(from, 'e', 'f', to);
      b.add_bytes(from, 'E', 'F', to);
    }
  };
  const int32_t h1 = b.new_state(), h2 = b.new_state(), h3 = b.new_state();
  hex_to(u, h1, /*skip_d=*/true);
  const int32_t d1 = b.new_state();
  b.add_bytes(u, 'd', 'd', d1);
  b.add_bytes(u, 'D', 'D', d1);
  b.add_bytes(d1, '0', '7', h2);
  hex_to(h1, h2, false);
  hex_to(h2, h3, false);
  hex_to(h3, end, false);
  return b.alt({r, Frag{bs, end}});
}

Frag plain_string(NfaBuilder& b) {
  Frag f = b.literal("\"");
  f = b.seq(f, b.repeat([&] { return string_char(b, false); }, 0, -1));
  return b.seq(f, b.literal("\""));
}

Frag string_length(NfaBuilder& b, int min, int max) {
  Frag f = b.literal("\"");
  f = b.seq(f, b.repeat([&] { return string_char(b, false); }, min, max));
  return b.seq(f, b.literal("\""));
}

Frag string_excluding(NfaBuilder& b, const std::vector<std::string>& names) {
  // A trie over the names' code points: inside it a string may close unless it spelled a name;
  // any character off the trie leads to a free state.
  struct Node {
    std::map<uint32_t, int> children;
    bool terminal = false;
    int32_t state = -1;
  };
  std::vector<Node> nodes(1);
  for (const std::string& name : names) {
    int cur = 0;
    for (size_t i = 0; i < name.size();) {
      uint32_t cp = 0;
      const size_t n = decode_utf8(name, i, &cp);
      if (n == 0) break;
      i += n;
      auto it = nodes[static_cast<size_t>(cur)].children.find(cp);
      if (it == nodes[static_cast<size_t>(cur)].children.end()) {
        nodes.emplace_back();
        const int id = static_cast<int>(nodes.size() - 1);
        nodes[static_cast<size_t>(cur)].children[cp] = id;
        cur = id;
      } else {
        cur = it->second;
      }
    }
    nodes[static_cast<size_t>(cur)].terminal = true;
  }
  const Frag open = b.literal("\"");
  const int32_t end = b.new_state();
  const int32_t free_state = b.new_state();
  for (Node& n : nodes) n.state = b.new_state();
  b.add_epsilon(open.end, nodes[0].state);
  const Frag any = string_char(b, true);
  b.add_epsilon(free_state, any.start);
  b.add_epsilon(any.end, free_state);
  const Frag close_free = b.literal("\"");
  b.add_epsilon(free_state, close_free.start);
  b.add_epsilon(close_free.end, end);
  for (const Node& n : nodes) {
    CodepointSet others = CodepointSet::all();
    for (const auto& [cp, child] : n.children) {
      const Frag c = lower_text(b, json_char(cp), Encoding::kRaw);
      b.add_epsilon(n.state, c.start);
      b.add_epsilon(c.end, nodes[static_cast<size_t>(child)].state);
      others = others.minus(CodepointSet::single(cp));
    }
    if (!others.empty()) {
      const Frag o = lower_class(b, others, Encoding::kJsonString);
      b.add_epsilon(n.state, o.start);
      b.add_epsilon(o.end, free_state);
    }
    if (!n.terminal) {
      const Frag q = b.literal("\"");
      b.add_epsilon(n.state, q.start);
      b.add_epsilon(q.end, end);
    }
  }
  return {open.start, end};
}

Frag number(NfaBuilder& b) {
  static const std::unique_ptr<Expr> e =
      fixed_regex(R"(-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,16})?([eE][+-]?[0-9]{1,2})?)");
  return lower(b, *e, Encoding::kRaw);
}

Frag integer(NfaBuilder& b) {
  static const std::unique_ptr<Expr> e = fixed_regex(R"(-?(0|[1-9][0-9]{0,14}))");
  return lower(b, *e, Encoding::kRaw);
}

std::string quote(const std::string& utf8) {
  std::string out = "\"";
  for (size_t i = 0; i < utf8.size();) {
    uint32_t cp = 0;
    const size_t n = decode_utf8(utf8, i, &cp);
    if (n == 0) {  // nlohmann validated the document; defensive
      ++i;
      continue;
    }
    out += json_char(cp);
    i += n;
  }
  return out + "\"";
}

std::string serialize(const Json& v) {
  switch (v.type()) {
    case Json::value_t::string: return quote(v.get_ref<const std::string&>());
    case Json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) {
        if (i > 0) out += ",";
        out += serialize(v[i]);
      }
      return out + "]";
    }
    case Json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, item] : v.items()) {
        if (!first) out += ",";
        first = false;
        out += quote(k) + ":" + serialize(item);
      }
      return out + "}";
    }
    default: return v.dump();
  }
}

Result<std::unique_ptr<Expr>> integer_range(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  const int64_t cap = static_cast<int64_t>(pow10(kMaxIntegerDigits) - 1);
  if (lo && *lo > kLimit) return invalid_argument("minimum is above 1e18, too large to generate");
  if (hi && *hi < -kLimit) return invalid_argument("maximum is below -1e18, too small to generate");
  int64_t l = lo && *lo >= -kLimit ? *lo : -cap;
  int64_t h = hi && *hi <= kLimit ? *hi : cap;
  if (!hi && l > h) h = l + cap;  // a large minimum alone still leaves room above it
  if (!lo && h < l) l = h - cap;
  if (l > h) {
    return invalid_argument("the integer range [" + std::to_string(l) + ", " + std::to_string(h) +
                            "] is empty");
  }
  auto alt = Expr::make(Expr::Kind::kAlt);
  if (l < 0) {
    const int64_t neg_hi = std::min<int64_t>(h, -1);
    alt->children.push_back(
        seq2(text("-"), nonneg_range(static_cast<uint64_t>(-neg_hi), static_cast<uint64_t>(-l))));
  }
  if (h >= 0) {
    alt->children.push_back(
        nonneg_range(static_cast<uint64_t>(std::max<int64_t>(l, 0)), static_cast<uint64_t>(h)));
  }
  if (alt->children.size() == 1) return std::move(alt->children[0]);
  return alt;
}

Result<std::unique_ptr<Expr>> number_range(std::optional<double> lo, bool lo_exclusive,
                                           std::optional<double> hi, bool hi_exclusive) {
  const double cap = static_cast<double>(pow10(kMaxIntegerDigits) - 1);
  const double limit = static_cast<double>(kLimit);
  if ((lo && !std::isfinite(*lo)) || (hi && !std::isfinite(*hi))) {
    return invalid_argument("number bounds must be finite");
  }
  if ((lo && *lo > limit) || (hi && *hi < -limit)) {
    return invalid_argument("number bounds beyond 1e18 cannot be generated");
  }
  auto alt = Expr::make(Expr::Kind::kAlt);
  // Integers of the range.
  std::optional<int64_t> ilo, ihi;
  if (lo && *lo >= -limit) {
    ilo = static_cast<int64_t>(lo_exclusive ? std::floor(*lo) + 1 : std::ceil(*lo));
  }
  if (hi && *hi <= limit) {
    ihi = static_cast<int64_t>(hi_exclusive ? std::ceil(*hi) - 1 : std::floor(*hi));
  }
  if (!ilo || !ihi || *ilo <= *ihi) {
    auto ints = integer_range(ilo, ihi);
    if (ints.has_value()) alt->children.push_back(std::move(*ints));
  }
  const auto fraction = [] {
    auto f = Expr::make(Expr::Kind::kRepeat);
    f->min = 1;
    f->max = kMaxFractionDigits;
    f->children.push_back(Expr::class_of(CodepointSet::range('0', '9')));
    return seq2(text("."), std::move(f));
  };
  // k.ddd in [k, k+1) for k >= 0, and -k.ddd in (-(k+1), -k].
  const double pos_lo = std::max(0.0, ilo ? static_cast<double>(*ilo) : 0.0);
  const double pos_hi = hi ? std::floor(*hi) - 1 : cap;
  if (pos_lo <= pos_hi && pos_lo <= cap) {
    auto k =
        nonneg_range(static_cast<uint64_t>(pos_lo), static_cast<uint64_t>(std::min(pos_hi, cap)));
    alt->children.push_back(seq2(std::move(k), fraction()));
  }
  const double neg_lo =
      std::max(0.0, hi ? (hi_exclusive ? std::floor(-*hi) + 1 : std::ceil(-*hi)) : 0.0);
  const double neg_hi = lo ? std::floor(-*lo) - 1 : cap;
  if (neg_lo <= neg_hi && neg_lo <= cap) {
    auto k =
        nonneg_range(static_cast<uint64_t>(neg_lo), static_cast<uint64_t>(std::min(neg_hi, cap)));
    alt->children.push_back(seq2(seq2(text("-"), std::move(k)), fraction()));
  }
  if (alt->children.empty()) {
    return invalid_argument(
        "no number can be generated in this range (bounds closer than one integer step)");
  }
  if (alt->children.size() == 1) return std::move(alt->children[0]);
  return alt;
}

Result<std::unique_ptr<Expr>> format(const std::string& name, const CompileLimits& limits) {
  // RFC 3339 full-date with real month lengths (Feb 29 only in leap years), time with a required
  // offset, and the HTML/RFC 5322 dot-atom email: what ajv-formats' "full" mode accepts.
  static const std::string kDate =
      R"((\d{4}-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])|\d{4}-(0[13-9]|1[0-2])-(29|30))"
      R"(|\d{4}-(0[13578]|1[02])-31|(\d\d(0[48]|[2468][048]|[13579][26]))"
      R"(|([02468][048]|[13579][26])00)-02-29))";
  static const std::string kTime =
      R"(([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d))";
  static const std::map<std::string, std::string> kFormats = {
      {"date", kDate},
      {"time", kTime},
      {"date-time", kDate + "T" + kTime},
      {"uuid", R"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"},
      {"email",
       R"([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@)"
       R"(([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)"},
  };
  auto it = kFormats.find(name);
  if (it == kFormats.end()) {
    return invalid_argument("format '" + name +
                            "' is not supported (supported: date-time, date, time, uuid, email)");
  }
  return parse_regex(it->second, RegexMode::kFullMatch, limits);
}

namespace {

// {"k": V, ...} with keys `key` and values `value` (both built fresh per call).
Frag object_of(NfaBuilder& b, const std::function<Frag()>& key, const std::function<Frag()>& value,
               const JsonGrammarOptions& o) {
  const Frag open = b.seq(b.literal("{"), ws(b, o));
  const int32_t filled = b.new_state();
  const int32_t end = b.new_state();
  const Frag pair = b.seq(b.seq(key(), b.seq(b.literal(":"), ws(b, o))), value());
  b.add_epsilon(open.end, pair.start);
  const Frag sep = b.seq(b.literal(","), ws(b, o));
  b.add_epsilon(filled, sep.start);
  b.add_epsilon(sep.end, pair.start);
  b.add_epsilon(pair.end, filled);
  const Frag close_empty = b.literal("}");
  b.add_epsilon(open.end, close_empty.start);
  b.add_epsilon(close_empty.end, end);
  const Frag close = b.seq(ws(b, o), b.literal("}"));
  b.add_epsilon(filled, close.start);
  b.add_epsilon(close.end, end);
  return {open.start, end};
}

}  // namespace

Frag any_object(NfaBuilder& b, int32_t value, const JsonGrammarOptions& o) {
  return object_of(
      b, [&] { return plain_string(b); }, [&] { return b.rule_ref(value); }, o);
}

Frag any_value(NfaBuilder& b, int32_t self, const JsonGrammarOptions& o) {
  std::vector<Frag> alts;
  alts.push_back(any_object(b, self, o));
  {  // [V, ...]
    const Frag open = b.seq(b.literal("["), ws(b, o));
    const int32_t filled = b.new_state();
    const int32_t end = b.new_state();
    const Frag item = b.rule_ref(self);
    b.add_epsilon(open.end, item.start);
    const Frag sep = b.seq(b.literal(","), ws(b, o));
    b.add_epsilon(filled, sep.start);
    b.add_epsilon(sep.end, item.start);
    b.add_epsilon(item.end, filled);
    const Frag close_empty = b.literal("]");
    b.add_epsilon(open.end, close_empty.start);
    b.add_epsilon(close_empty.end, end);
    const Frag close = b.seq(ws(b, o), b.literal("]"));
    b.add_epsilon(filled, close.start);
    b.add_epsilon(close.end, end);
    alts.push_back({open.start, end});
  }
  alts.push_back(plain_string(b));
  alts.push_back(number(b));
  alts.push_back(b.literal("true"));
  alts.push_back(b.literal("false"));
  alts.push_back(b.literal("null"));
  return b.alt(alts);
}

}  // namespace turbine::structured::json
