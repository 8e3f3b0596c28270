#include "tokenizer/aligned_normalizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "tokenizer/utf8.h"

namespace turbine::tokenizer {
namespace {

using nlohmann::json;

struct CpSpan {
  uint32_t cp;
  ByteSpan span;
};

std::vector<CpSpan> code_points(const AlignedText& t) {
  std::vector<CpSpan> out;
  out.reserve(t.text.size());
  for (size_t i = 0; i < t.text.size();) {
    const size_t at = i;
    const uint32_t cp = next_code_point(t.text, i);
    out.push_back({cp, t.align[at]});
  }
  return out;
}

AlignedText from_code_points(const std::vector<CpSpan>& cps) {
  AlignedText t;
  t.text.reserve(cps.size());
  t.align.reserve(cps.size());
  for (const CpSpan& c : cps) t.push(c.cp, c.span);
  return t;
}

bool is_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<uint8_t>(c) >= 0x80) return false;
  }
  return true;
}

utf8proc_category_t category(uint32_t cp) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp));
}

int combining_class(uint32_t cp) {
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->combining_class;
}

// Rust's char::is_other (categories Cc, Cf, Cs, Co, Cn) minus tab, newline and carriage return.
bool is_bert_control(uint32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  const auto c = category(cp);
  return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CS ||
         c == UTF8PROC_CATEGORY_CO || c == UTF8PROC_CATEGORY_CN;
}

// Canonical (or compatibility) decomposition of each character, then canonical ordering of
// combining marks; every produced character keeps its source character's span.
std::vector<CpSpan> decompose(const std::vector<CpSpan>& in, bool compat) {
  std::vector<CpSpan> out;
  out.reserve(in.size() + in.size() / 2);
  utf8proc_int32_t buf[32];
  const auto options =
      static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0));
  for (const CpSpan& c : in) {
    int boundclass = 0;
    const utf8proc_ssize_t n =
        utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c.cp), buf, 32, options, &boundclass);
    if (n <= 0 || n > 32) {
      out.push_back(c);
      continue;
    }
    for (utf8proc_ssize_t k = 0; k < n; ++k) out.push_back({static_cast<uint32_t>(buf[k]), c.span});
  }
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < out.size();) {
    if (combining_class(out[i].cp) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && combining_class(out[j].cp) != 0) ++j;
    if (j - i > 1) {
      std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(i),
                       out.begin() + static_cast<std::ptrdiff_t>(j),
                       [](const CpSpan& a, const CpSpan& b) {
                         return combining_class(a.cp) < combining_class(b.cp);
                       });
    }
    i = j;
  }
  return out;
}

// Canonical composition of a decomposed sequence. Each composed character takes the span of the
// first character of its decomposition (the starter); the marks it absorbed vanish.
std::vector<CpSpan> compose(const std::vector<CpSpan>& d) {
  std::vector<utf8proc_int32_t> buf(d.size() + 1);
  for (size_t i = 0; i < d.size(); ++i) buf[i] = static_cast<utf8proc_int32_t>(d[i].cp);
  const utf8proc_ssize_t n = utf8proc_normalize_utf32(
      buf.data(), static_cast<utf8proc_ssize_t>(d.size()), UTF8PROC_COMPOSE);
  if (n < 0) return d;
  std::vector<CpSpan> out;
  out.reserve(static_cast<size_t>(n));
  std::vector<uint8_t> used(d.size(), 0);
  size_t next = 0;
  utf8proc_int32_t parts[32];
  for (utf8proc_ssize_t k = 0; k < n; ++k) {
    while (next < d.size() && used[next]) ++next;
    const auto cp = static_cast<uint32_t>(buf[k]);
    if (next >= d.size()) {
      out.push_back({cp, d.empty() ? ByteSpan{} : d.back().span});
      continue;
    }
    out.push_back({cp, d[next].span});
    used[next] = 1;
    if (cp == d[next].cp) continue;
    int boundclass = 0;
    const utf8proc_ssize_t m = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), parts, 32,
                                                       UTF8PROC_DECOMPOSE, &boundclass);
    for (utf8proc_ssize_t p = 1; p < m && p < 32; ++p) {
      for (size_t j = next + 1; j < d.size(); ++j) {
        if (!used[j] && d[j].cp == static_cast<uint32_t>(parts[p])) {
          used[j] = 1;
          break;
        }
      }
    }
  }
  return out;
}

void unicode_form(AlignedText& t, bool compose_after, bool compat) {
  if (is_ascii(t.text)) return;
  std::vector<CpSpan> cps = decompose(code_points(t), compat);
  if (compose_after) cps = compose(cps);
  t = from_code_points(cps);
}

// Maps each character to zero or more characters that take its span.
template <typename F>
void map_chars(AlignedText& t, F&& f) {
  AlignedText out;
  out.text.reserve(t.text.size());
  out.align.reserve(t.text.size());
  uint32_t buf[4];
  for (size_t i = 0; i < t.text.size();) {
    const ByteSpan span = t.align[i];
    const uint32_t cp = next_code_point(t.text, i);
    const int n = f(cp, buf);
    for (int k = 0; k < n; ++k) out.push(buf[k], span);
  }
  t = std::move(out);
}

// Per-character full lowercase mapping (Rust's char::to_lowercase): U+0130 is the only
// unconditional mapping to two characters.
int lowercase(uint32_t cp, uint32_t* out) {
  if (cp < 0x80) {
    out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    return 1;
  }
  if (cp == 0x130) {
    out[0] = 'i';
    out[1] = 0x307;
    return 2;
  }
  out[0] = static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
  return 1;
}

// Replaces text[b, e) (its characters' spans in `spans`) by `repl`: replacement character j takes
// the span of replaced character min(j, count - 1), as NormalizedString::transform assigns them.
void replace_chars(const std::vector<ByteSpan>& spans, std::string_view repl, AlignedText& out) {
  size_t j = 0;
  for (size_t i = 0; i < repl.size(); ++j) {
    const size_t at = i;
    (void)next_code_point(repl, i);
    out.push_bytes(repl.substr(at, i - at), spans[std::min(j, spans.size() - 1)]);
  }
}

// SentencePiece's charsmap over extended grapheme clusters: a cluster shorter than 6 bytes is
// looked up whole; otherwise (or when it has no entry) each of its characters is.
void precompiled(const PrecompiledCharsmap& map, AlignedText& t) {
  if (map.empty() || t.empty()) return;
  std::vector<size_t> bounds{0};
  {
    utf8proc_int32_t state = 0;
    size_t i = 0;
    uint32_t prev = next_code_point(t.text, i);
    while (i < t.text.size()) {
      const size_t at = i;
      const uint32_t cp = next_code_point(t.text, i);
      if (utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(prev),
                                           static_cast<utf8proc_int32_t>(cp), &state))
        bounds.push_back(at);
      prev = cp;
    }
    bounds.push_back(t.text.size());
  }
  AlignedText out;
  out.text.reserve(t.text.size());
  out.align.reserve(t.text.size());
  bool modified = false;
  std::vector<ByteSpan> spans;
  for (size_t g = 0; g + 1 < bounds.size(); ++g) {
    const size_t b = bounds[g], e = bounds[g + 1];
    const std::string_view grapheme = std::string_view(t.text).substr(b, e - b);
    if (e - b < 6) {
      if (auto r = map.transform(grapheme)) {
        spans.clear();
        for (size_t i = b; i < e;) {
          spans.push_back(t.align[i]);
          (void)next_code_point(t.text, i);
        }
        replace_chars(spans, *r, out);
        modified = true;
        continue;
      }
    }
    for (size_t i = b; i < e;) {
      const size_t at = i;
      (void)next_code_point(t.text, i);
      const std::string_view ch = std::string_view(t.text).substr(at, i - at);
      if (auto r = map.transform(ch)) {
        replace_chars({t.align[at]}, *r, out);
        modified = true;
      } else {
        out.text.append(ch);
        out.align.insert(out.align.end(), t.align.begin() + static_cast<std::ptrdiff_t>(at),
                         t.align.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
  }
  if (modified) t = std::move(out);
}

}  // namespace

bool is_unicode_whitespace(uint32_t cp) {
  switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000: return true;
    default: return cp >= 0x2000 && cp <= 0x200A;
  }
}

bool is_bert_punctuation(uint32_t cp) {
  if (cp < 0x80) {
    return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
           (cp >= 0x7B && cp <= 0x7E);
  }
  const auto c = category(cp);
  return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

bool is_chinese_char(uint32_t cp) {
  // The Rust crate's ranges (0x2B920, not 0x2B820, is what it checks).
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

bool is_unicode_numeric(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  const auto c = category(cp);
  return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

Result<AlignedNormalizer> AlignedNormalizer::parse(const json& config) {
  AlignedNormalizer n;
  TURBINE_RETURN_IF_ERROR(parse_normalizer_steps(config, /*with_bert=*/true, n.steps_));
  return n;
}

std::string AlignedNormalizer::normalize(std::string_view text) const {
  AlignedText t = AlignedText::from_original(text);
  normalize(t);
  return std::move(t.text);
}

void AlignedNormalizer::normalize(AlignedText& t) const {
  for (const Step& step : steps_) {
    switch (step.kind) {
      case Kind::kBertClean:
        map_chars(t, [](uint32_t cp, uint32_t* out) {
          if (cp == 0 || cp == 0xFFFD || is_bert_control(cp)) return 0;
          out[0] = is_unicode_whitespace(cp) ? ' ' : cp;
          return 1;
        });
        break;
      case Kind::kBertChinese:
        if (is_ascii(t.text)) break;
        map_chars(t, [](uint32_t cp, uint32_t* out) {
          if (!is_chinese_char(cp)) {
            out[0] = cp;
            return 1;
          }
          out[0] = ' ';
          out[1] = cp;
          out[2] = ' ';
          return 3;
        });
        break;
      case Kind::kNfc: unicode_form(t, true, false); break;
      case Kind::kNfd: unicode_form(t, false, false); break;
      case Kind::kNfkc: unicode_form(t, true, true); break;
      case Kind::kNfkd: unicode_form(t, false, true); break;
      case Kind::kLowercase: map_chars(t, lowercase); break;
      case Kind::kStripAccents:
        // Rust's StripAccents / BertNormalizer: NFD, then drop nonspacing marks (Mn).
        if (is_ascii(t.text)) break;
        unicode_form(t, false, false);
        map_chars(t, [](uint32_t cp, uint32_t* out) {
          if (category(cp) == UTF8PROC_CATEGORY_MN) return 0;
          out[0] = cp;
          return 1;
        });
        break;
      case Kind::kNmt:
        map_chars(t, [](uint32_t cp, uint32_t* out) {
          if ((cp >= 0x01 && cp <= 0x08) || cp == 0x0B || (cp >= 0x0E && cp <= 0x1F) ||
              cp == 0x7F || cp == 0x8F || cp == 0x9F)
            return 0;
          const bool space = cp == 0x09 || cp == 0x0A || cp == 0x0C || cp == 0x0D || cp == 0x1680 ||
                             (cp >= 0x200B && cp <= 0x200F) || cp == 0x2028 || cp == 0x2029 ||
                             cp == 0x2581 || cp == 0xFEFF || cp == 0xFFFD;
          out[0] = space ? ' ' : cp;
          return 1;
        });
        break;
      case Kind::kPrecompiled: precompiled(*step.charsmap, t); break;
      case Kind::kPrepend: {
        if (t.empty() || step.text.empty()) break;
        AlignedText out;
        out.push_bytes(step.text, t.align[0]);
        out.text += t.text;
        out.align.insert(out.align.end(), t.align.begin(), t.align.end());
        t = std::move(out);
        break;
      }
      case Kind::kStrip: {
        size_t begin = 0, end = t.text.size();
        if (step.left) {
          while (begin < end) {
            size_t i = begin;
            if (!is_unicode_whitespace(next_code_point(t.text, i))) break;
            begin = i;
          }
        }
        if (step.right) {
          while (end > begin) {
            size_t start = end - 1;
            while (start > begin && (static_cast<uint8_t>(t.text[start]) & 0xC0) == 0x80) --start;
            size_t i = start;
            if (!is_unicode_whitespace(next_code_point(t.text, i))) break;
            end = start;
          }
        }
        if (begin != 0 || end != t.text.size()) t = t.slice(begin, end);
        break;
      }
      case Kind::kReplace: {
        std::vector<std::pair<size_t, size_t>> spans;
        step.regex->find_all(t.text, spans);
        if (spans.empty()) break;
        AlignedText out;
        size_t last = 0;
        for (const auto& [b, e] : spans) {
          if (e <= b) continue;
          out.text.append(t.text, last, b - last);
          out.align.insert(out.align.end(), t.align.begin() + static_cast<std::ptrdiff_t>(last),
                           t.align.begin() + static_cast<std::ptrdiff_t>(b));
          // The replacement takes the span of the last character it replaces.
          out.push_bytes(step.text, t.align[e - 1]);
          last = e;
        }
        out.text.append(t.text, last, std::string::npos);
        out.align.insert(out.align.end(), t.align.begin() + static_cast<std::ptrdiff_t>(last),
                         t.align.end());
        t = std::move(out);
        break;
      }
    }
  }
}

}  // namespace turbine::tokenizer
