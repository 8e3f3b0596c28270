#include "structured/expr.h"

#include <algorithm>
#include <cstdio>

#include "common/utf8.h"

namespace turbine::structured {

std::unique_ptr<Expr> Expr::make(Kind kind) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  return e;
}

std::unique_ptr<Expr> Expr::text_of(std::string text) {
  auto e = make(Kind::kText);
  e->text = std::move(text);
  return e;
}

std::unique_ptr<Expr> Expr::class_of(CodepointSet set) {
  auto e = make(Kind::kClass);
  e->set = std::move(set);
  return e;
}

std::unique_ptr<Expr> Expr::repeat_of(std::unique_ptr<Expr> item, int min, int max) {
  auto e = make(Kind::kRepeat);
  e->min = min;
  e->max = max;
  e->children.push_back(std::move(item));
  return e;
}

bool simple_quantifier(char c, int* min, int* max) {
  if (c != '*' && c != '+' && c != '?') return false;
  *min = c == '+' ? 1 : 0;
  *max = c == '?' ? 1 : -1;
  return true;
}

bool read_repeat_count(std::string_view s, size_t* pos, int* out) {
  const size_t start = *pos;
  long long v = 0;
  while (*pos < s.size() && s[*pos] >= '0' && s[*pos] <= '9') {
    v = std::min<long long>(v * 10 + (s[*pos] - '0'), 1'000'000'000);
    ++*pos;
  }
  *out = static_cast<int>(v);
  return *pos > start;
}

std::string json_char(uint32_t cp) {
  switch (cp) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: break;
  }
  if (cp < 0x20) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(cp));
    return buf;
  }
  std::string out;
  append_code_point(out, static_cast<char32_t>(cp));
  return out;
}

Frag lower_class(NfaBuilder& b, const CodepointSet& set, Encoding enc) {
  if (enc == Encoding::kRaw) return b.codepoints(set);
  // Characters that appear raw inside a JSON string, and the escaped rest one by one.
  CodepointSet raw = set.minus(CodepointSet::range(0, 0x1F));
  CodepointSet specials = CodepointSet::range(0, 0x1F);
  specials.add('"', '"');
  specials.add('\\', '\\');
  raw = raw.minus(specials);
  std::vector<Frag> alts;
  if (!raw.empty()) alts.push_back(b.codepoints(raw));
  const CodepointSet escaped = set.intersect(specials);
  for (const auto& [lo, hi] : escaped.ranges()) {
    for (uint32_t cp = lo; cp <= hi; ++cp) alts.push_back(b.literal(json_char(cp)));
  }
  if (alts.size() == 1) return alts[0];
  return b.alt(alts);
}

Frag lower_text(NfaBuilder& b, const std::string& text, Encoding enc) {
  if (enc == Encoding::kRaw) return b.literal(text);
  std::string encoded;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const size_t n = decode_utf8(text, i, &cp);
    if (n == 0) {  // parsers only produce valid UTF-8; keep the byte rather than crash
      encoded.push_back(text[i]);
      ++i;
      continue;
    }
    encoded += json_char(cp);
    i += n;
  }
  return b.literal(encoded);
}

Frag lower(NfaBuilder& b, const Expr& e, Encoding enc) {
  switch (e.kind) {
    case Expr::Kind::kEmpty: return b.empty();
    case Expr::Kind::kText: return lower_text(b, e.text, enc);
    case Expr::Kind::kClass: return lower_class(b, e.set, enc);
    case Expr::Kind::kRule: return b.rule_ref(e.rule);
    case Expr::Kind::kSeq: {
      Frag out = b.empty();
      for (const auto& c : e.children) out = b.seq(out, lower(b, *c, enc));
      return out;
    }
    case Expr::Kind::kAlt: {
      std::vector<Frag> alts;
      alts.reserve(e.children.size());
      for (const auto& c : e.children) alts.push_back(lower(b, *c, enc));
      return b.alt(alts);
    }
    case Expr::Kind::kRepeat: {
      const Expr& child = *e.children.at(0);
      return b.repeat([&] { return lower(b, child, enc); }, e.min, e.max);
    }
  }
  return b.empty();
}

}  // namespace turbine::structured
