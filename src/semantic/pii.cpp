#include "semantic/pii.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace turbine::semantic {
namespace {

constexpr std::array<std::string_view, 6> kBuiltinTypes = {
    "US_SSN", "CREDIT_CARD", "IBAN_CODE", "EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS"};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_alnum(char c) {
  return is_digit(c) || is_alpha(c);
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
char to_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
}
char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

constexpr size_t kNone = std::string_view::npos;

// A candidate glued to a word or number on its left ("ORD-123-45-6789", "v1.2.3.4", "x4111...").
bool glued_before(std::string_view t, size_t i) {
  if (i == 0) return false;
  char p = t[i - 1];
  if (is_alnum(p) || p == '_') return true;
  if ((p == '-' || p == '.' || p == '/' || p == '#' || p == ':') && i >= 2 &&
      (is_alnum(t[i - 2]) || t[i - 2] == '_')) {
    // "SSN:123-45-6789" and "tel.415..." read naturally; a digit or '-'/'.'-joined id does not.
    return is_digit(t[i - 2]) || p == '-' || p == '/' || p == '#';
  }
  return false;
}

bool glued_after(std::string_view t, size_t e) {
  if (e >= t.size()) return false;
  char c = t[e];
  if (is_alnum(c) || c == '_') return true;
  if ((c == '-' || c == '.' || c == '/' || c == '#') && e + 1 < t.size() && is_digit(t[e + 1])) {
    return true;
  }
  if ((c == '-' || c == '_') && e + 1 < t.size() && is_alpha(t[e + 1])) return true;
  return false;
}

// Exactly n digits at i: the position after them, or kNone.
size_t digits(std::string_view t, size_t i, size_t n, std::string* out = nullptr) {
  if (i + n > t.size()) return kNone;
  for (size_t k = 0; k < n; ++k) {
    if (!is_digit(t[i + k])) return kNone;
  }
  if (out) out->append(t.substr(i, n));
  return i + n;
}
size_t digit_run(std::string_view t, size_t i) {
  size_t e = i;
  while (e < t.size() && is_digit(t[e])) ++e;
  return e;
}

// A context word within 48 bytes before i in the same sentence (case-insensitive), for the
// bare-digit formats.
bool context_before(std::string_view t, size_t i, std::initializer_list<std::string_view> words) {
  size_t from = i > 48 ? i - 48 : 0;
  for (size_t k = i; k > from; --k) {
    char c = t[k - 1];
    if (c == '\n' || ((c == '.' || c == '!' || c == '?') && k < i && t[k] == ' ')) {
      from = k;
      break;
    }
  }
  std::string window;
  for (size_t k = from; k < i; ++k) window += to_lower(t[k]);
  for (std::string_view w : words) {
    if (window.find(w) != std::string::npos) return true;
  }
  return false;
}

// --- US_SSN -------------------------------------------------------------------------------
size_t match_ssn(std::string_view t, size_t i) {
  std::string d;
  size_t p = digits(t, i, 3, &d);
  if (p == kNone) return kNone;
  if (p < t.size() && (t[p] == '-' || t[p] == ' ')) {
    char sep = t[p];
    size_t q = digits(t, p + 1, 2, &d);
    if (q == kNone || q >= t.size() || t[q] != sep) return kNone;
    size_t r = digits(t, q + 1, 4, &d);
    if (r == kNone || !ssn_valid(d)) return kNone;
    return r;
  }
  if (digit_run(t, i) != i + 9) return kNone;
  if (!context_before(t, i, {"ssn", "social security", "ss#", "ss #", "taxpayer"})) return kNone;
  return ssn_valid(t.substr(i, 9)) ? i + 9 : kNone;
}

// --- CREDIT_CARD --------------------------------------------------------------------------
bool card_groups_ok(const std::vector<size_t>& g) {
  if (g.size() == 3 && g[0] == 4 && g[1] == 6 && (g[2] == 5 || g[2] == 4)) return true;
  if (g.size() < 4) return false;
  for (size_t k = 0; k + 1 < g.size(); ++k) {
    if (g[k] != 4) return false;
  }
  return g.back() >= 1 && g.back() <= 4;
}

size_t match_card(std::string_view t, size_t i) {
  size_t e = digit_run(t, i);
  size_t n = e - i;
  bool grouped = e + 1 < t.size() && (t[e] == ' ' || t[e] == '-') && is_digit(t[e + 1]);
  if (!grouped) {
    if (n < 13 || n > 19) return kNone;
    std::string_view d = t.substr(i, n);
    return luhn_valid(d) && card_issuer_valid(d) ? e : kNone;
  }
  char sep = t[e];
  std::vector<size_t> groups{n};
  std::vector<size_t> ends{e};
  std::string all(t.substr(i, n));
  size_t p = e;
  while (p + 1 < t.size() && t[p] == sep && is_digit(t[p + 1]) && all.size() <= 19) {
    size_t q = digit_run(t, p + 1);
    groups.push_back(q - p - 1);
    all.append(t.substr(p + 1, q - p - 1));
    ends.push_back(q);
    p = q;
  }
  // Longest grouping first: "4111 1111 1111 1111 2 times" is a card followed by a number.
  for (size_t k = groups.size(); k >= 3; --k) {
    std::vector<size_t> g(groups.begin(), groups.begin() + k);
    size_t total = 0;
    for (size_t x : g) total += x;
    if (total < 13 || total > 19 || !card_groups_ok(g)) continue;
    std::string_view d(all.data(), total);
    if (luhn_valid(d) && card_issuer_valid(d) && !glued_after(t, ends[k - 1])) return ends[k - 1];
  }
  return kNone;
}

// --- IBAN_CODE ----------------------------------------------------------------------------
size_t match_iban(std::string_view t, size_t i) {
  if (i + 4 > t.size() || !is_alpha(t[i]) || !is_alpha(t[i + 1])) return kNone;
  char cc[2] = {to_upper(t[i]), to_upper(t[i + 1])};
  int len = iban_length(std::string_view(cc, 2));
  if (len == 0 || !is_digit(t[i + 2]) || !is_digit(t[i + 3])) return kNone;
  std::string compact{cc[0], cc[1], t[i + 2], t[i + 3]};
  size_t p = i + 4;
  bool spaced = p < t.size() && t[p] == ' ';
  while (compact.size() < static_cast<size_t>(len)) {
    if (spaced && compact.size() % 4 == 0) {
      if (p >= t.size() || t[p] != ' ') return kNone;
      ++p;
    }
    if (p >= t.size() || !is_alnum(t[p])) return kNone;
    compact += to_upper(t[p++]);
  }
  if (p < t.size() && is_alnum(t[p])) return kNone;
  return iban_valid(compact) ? p : kNone;
}

// --- PHONE_NUMBER -------------------------------------------------------------------------
// NANP body at i: "(NPA) NXX-XXXX", "NPA-NXX-XXXX" (one separator kind), or 10 bare digits when
// `bare_ok`. Appends the ten digits to `d`.
size_t nanp_body(std::string_view t, size_t i, bool bare_ok, std::string& d) {
  size_t p;
  if (i < t.size() && t[i] == '(') {
    p = digits(t, i + 1, 3, &d);
    if (p == kNone || p >= t.size() || t[p] != ')') return kNone;
    ++p;
    if (p < t.size() && t[p] == ' ') ++p;
    p = digits(t, p, 3, &d);
    if (p == kNone) return kNone;
    if (p < t.size() && (t[p] == '-' || t[p] == '.' || t[p] == ' ')) ++p;
    return digits(t, p, 4, &d);
  }
  p = digits(t, i, 3, &d);
  if (p == kNone) return kNone;
  if (p < t.size() && (t[p] == '-' || t[p] == '.' || t[p] == ' ')) {
    char sep = t[p];
    p = digits(t, p + 1, 3, &d);
    if (p == kNone || p >= t.size() || t[p] != sep) return kNone;
    return digits(t, p + 1, 4, &d);
  }
  if (!bare_ok) return kNone;
  return digits(t, p, 7, &d);
}

size_t match_nanp(std::string_view t, size_t i) {
  std::string d;
  size_t p = i;
  bool prefixed = false;
  if (t[p] == '+') {
    if (p + 1 >= t.size() || t[p + 1] != '1') return kNone;
    p += 2;
    prefixed = true;
  } else if (t[p] == '1' && p + 1 < t.size() &&
             (t[p + 1] == '-' || t[p + 1] == ' ' || t[p + 1] == '.' || t[p + 1] == '(')) {
    p += 1;
    prefixed = true;
  }
  if (prefixed && p < t.size() && (t[p] == ' ' || t[p] == '-' || t[p] == '.')) ++p;
  bool bare_ok =
      (prefixed && t[i] == '+') ||
      context_before(t, i,
                     {"phone", "call", "tel", "mobile", "cell", "fax", "text me", "whatsapp"});
  size_t e = nanp_body(t, p, bare_ok, d);
  if (e == kNone || d.size() != 10 || !nanp_valid(d)) return kNone;
  return e;
}

size_t match_e164(std::string_view t, size_t i) {
  if (t[i] != '+' || i + 1 >= t.size() || !is_digit(t[i + 1]) || t[i + 1] == '1') return kNone;
  std::string d;
  std::vector<std::pair<size_t, size_t>> marks;  // (digit count, end position) after each group
  size_t p = i + 1;
  while (p < t.size()) {
    bool paren = t[p] == '(';
    size_t q = paren ? p + 1 : p;
    size_t e = digit_run(t, q);
    if (e == q) break;
    if (paren) {
      if (e >= t.size() || t[e] != ')') break;
      d.append(t.substr(q, e - q));
      ++e;
    } else {
      d.append(t.substr(q, e - q));
    }
    marks.emplace_back(d.size(), e);
    p = e;
    if (p + 1 < t.size() && (t[p] == ' ' || t[p] == '-' || t[p] == '.') &&
        (is_digit(t[p + 1]) || t[p + 1] == '(')) {
      ++p;
      continue;
    }
    if (p < t.size() && t[p] == '(') continue;
    break;
  }
  if (d.size() < 3) return kNone;
  size_t cc = 0;
  for (size_t k = 1; k <= 3; ++k) {
    if (calling_code_valid(std::string_view(d).substr(0, k))) {
      cc = k;
      break;
    }
  }
  if (cc == 0) return kNone;
  for (size_t k = marks.size(); k-- > 0;) {
    auto [count, end] = marks[k];
    if (count < 8 || count > 15 || count <= cc + 3) continue;
    if (!glued_after(t, end)) return end;
  }
  return kNone;
}

// --- IP_ADDRESS ---------------------------------------------------------------------------
size_t match_ipv4(std::string_view t, size_t i) {
  size_t p = i;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (p >= t.size() || t[p] != '.') return kNone;
      ++p;
    }
    size_t e = digit_run(t, p);
    if (e == p || e - p > 3) return kNone;
    p = e;
  }
  return ipv4_valid(t.substr(i, p - i)) ? p : kNone;
}

size_t match_ipv6(std::string_view t, size_t i) {
  size_t e = i;
  int colons = 0;
  while (e < t.size() && (is_hex(t[e]) || t[e] == ':' || t[e] == '.') && e - i < 46) {
    colons += t[e] == ':';
    ++e;
  }
  while (e > i && t[e - 1] == '.') --e;  // sentence end
  if (colons < 2) return kNone;
  if (e < t.size() && (is_alnum(t[e]) || t[e] == '_' || t[e] == ':')) return kNone;
  std::string_view cand = t.substr(i, e - i);
  // A decimal digit is required: "a::b" and "dead::beef" are far more often code than addresses.
  bool has_digit = std::any_of(cand.begin(), cand.end(), is_digit);
  return has_digit && ipv6_valid(cand) ? e : kNone;
}

// --- EMAIL_ADDRESS ------------------------------------------------------------------------
bool local_char(char c) {
  return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

void find_emails(std::string_view t, std::vector<PiiMatch>& out) {
  for (size_t at = t.find('@'); at != kNone; at = t.find('@', at + 1)) {
    size_t b = at;
    while (b > 0 && local_char(t[b - 1])) --b;
    while (b < at && (t[b] == '.' || t[b] == '-')) ++b;
    if (b == at || t[at - 1] == '.') continue;
    std::string_view local = t.substr(b, at - b);
    if (local.find("..") != kNone) continue;
    size_t e = at + 1;
    while (e < t.size() && (is_alnum(t[e]) || t[e] == '.' || t[e] == '-')) ++e;
    while (e > at + 1 && (t[e - 1] == '.' || t[e - 1] == '-')) --e;
    std::string_view domain = t.substr(at + 1, e - at - 1);
    if (domain.empty() || domain.find("..") != kNone) continue;
    size_t last_dot = domain.rfind('.');
    if (last_dot == kNone) continue;
    std::string_view tld = domain.substr(last_dot + 1);
    if (tld.size() < 2 || tld.size() > 24 || !std::all_of(tld.begin(), tld.end(), is_alpha)) {
      continue;
    }
    bool labels_ok = true;
    size_t start = 0;
    while (start <= domain.size()) {
      size_t dot = domain.find('.', start);
      std::string_view label = domain.substr(start, dot == kNone ? kNone : dot - start);
      if (label.empty() || label.front() == '-' || label.back() == '-' || label.size() > 63) {
        labels_ok = false;
      }
      if (dot == kNone) break;
      start = dot + 1;
    }
    if (!labels_ok) continue;
    out.push_back({"EMAIL_ADDRESS", b, e, 1.0f, false});
  }
}

}  // namespace

std::string_view strip_bio_prefix(std::string_view label) {
  if (label.size() > 2 && label[1] == '-' &&
      (label[0] == 'B' || label[0] == 'I' || label[0] == 'E' || label[0] == 'O' ||
       label[0] == 'S')) {
    return label.substr(2);
  }
  return label;
}

bool is_builtin_pii_type(std::string_view bare_type) {
  return std::find(kBuiltinTypes.begin(), kBuiltinTypes.end(), bare_type) != kBuiltinTypes.end();
}

std::string builtin_pii_type_list() {
  std::string s;
  for (std::string_view t : kBuiltinTypes) {
    if (!s.empty()) s += ", ";
    s += t;
  }
  return s;
}

bool ssn_valid(std::string_view d) {
  if (d.size() != 9 || !std::all_of(d.begin(), d.end(), is_digit)) return false;
  std::string_view area = d.substr(0, 3), group = d.substr(3, 2), serial = d.substr(5, 4);
  if (area == "000" || area == "666" || area[0] == '9') return false;
  return group != "00" && serial != "0000";
}

bool luhn_valid(std::string_view d) {
  if (d.size() < 2) return false;
  int sum = 0;
  bool dbl = false;
  for (size_t k = d.size(); k-- > 0;) {
    if (!is_digit(d[k])) return false;
    int v = d[k] - '0';
    if (dbl) {
      v *= 2;
      if (v > 9) v -= 9;
    }
    sum += v;
    dbl = !dbl;
  }
  return sum % 10 == 0;
}

bool card_issuer_valid(std::string_view d) {
  size_t n = d.size();
  auto prefix = [&](size_t k) {
    int v = 0;
    for (size_t i = 0; i < k && i < n; ++i) v = v * 10 + (d[i] - '0');
    return v;
  };
  auto in = [](int v, int lo, int hi) { return v >= lo && v <= hi; };
  int p1 = prefix(1), p2 = prefix(2), p3 = prefix(3), p4 = prefix(4), p6 = prefix(6);
  if (p1 == 4) return n == 13 || n == 16 || n == 19;                           // Visa
  if (in(p2, 51, 55) || in(p4, 2221, 2720)) return n == 16;                    // Mastercard
  if (p2 == 34 || p2 == 37) return n == 15;                                    // Amex
  if (p4 == 6011 || in(p3, 644, 649) || p2 == 65 || in(p6, 622126, 622925)) {  // Discover
    return n >= 16 && n <= 19;
  }
  if (in(p4, 3528, 3589)) return n >= 16 && n <= 19;                         // JCB
  if (in(p3, 300, 305) || p4 == 3095 || p2 == 36 || p2 == 38 || p2 == 39) {  // Diners
    return n >= 14 && n <= 19;
  }
  if (p2 == 62) return n >= 16 && n <= 19;  // UnionPay
  if (p4 == 5018 || p4 == 5020 || p4 == 5038 || p4 == 5893 || p4 == 6304 || p4 == 6759 ||
      in(p4, 6761, 6763)) {
    return n >= 12 && n <= 19;  // Maestro
  }
  return false;
}

int iban_length(std::string_view cc) {
  // ISO 13616 registry lengths.
  static constexpr std::pair<std::string_view, int> kLengths[] = {
      {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
      {"BG", 22}, {"BH", 22}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28},
      {"CZ", 24}, {"DE", 22}, {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24},
      {"FI", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18},
      {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23},
      {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32},
      {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MD", 24}, {"ME", 22},
      {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24},
      {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24},
      {"SC", 31}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28},
      {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20}};
  for (const auto& [c, len] : kLengths) {
    if (c == cc) return len;
  }
  return 0;
}

bool iban_valid(std::string_view s) {
  if (s.size() < 15 || s.size() > 34) return false;
  if (iban_length(s.substr(0, 2)) != static_cast<int>(s.size())) return false;
  if (!is_digit(s[2]) || !is_digit(s[3])) return false;
  // mod 97 of BBAN + country + check digits, letters as 10..35, streamed digit by digit.
  int rem = 0;
  auto feed = [&](char c) -> bool {
    if (is_digit(c)) {
      rem = (rem * 10 + (c - '0')) % 97;
    } else if (c >= 'A' && c <= 'Z') {
      int v = c - 'A' + 10;
      rem = (rem * 100 + v) % 97;
    } else {
      return false;
    }
    return true;
  };
  for (size_t k = 4; k < s.size(); ++k) {
    if (!feed(s[k])) return false;
  }
  for (size_t k = 0; k < 4; ++k) {
    if (!feed(s[k])) return false;
  }
  return rem == 1;
}

bool nanp_valid(std::string_view d) {
  if (d.size() != 10 || !std::all_of(d.begin(), d.end(), is_digit)) return false;
  auto n11 = [](std::string_view x) { return x[1] == '1' && x[2] == '1'; };
  std::string_view npa = d.substr(0, 3), nxx = d.substr(3, 3);
  if (npa[0] < '2' || npa[1] == '9' || n11(npa)) return false;
  if (nxx[0] < '2' || n11(nxx)) return false;
  return true;
}

bool calling_code_valid(std::string_view d) {
  if (d.empty() || d.size() > 3 || !std::all_of(d.begin(), d.end(), is_digit)) return false;
  int v = 0;
  for (char c : d) v = v * 10 + (c - '0');
  if (d.size() == 1) return v == 1 || v == 7;
  if (d.size() == 2) {
    static constexpr int k2[] = {20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46,
                                 47, 48, 49, 51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63,
                                 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98};
    return std::find(std::begin(k2), std::end(k2), v) != std::end(k2);
  }
  static constexpr std::pair<int, int> k3[] = {
      {211, 212}, {213, 213}, {216, 216}, {218, 218}, {220, 258}, {260, 269}, {290, 291},
      {297, 299}, {350, 359}, {370, 378}, {380, 383}, {385, 387}, {389, 389}, {420, 421},
      {423, 423}, {500, 509}, {590, 599}, {670, 670}, {672, 692}, {850, 850}, {852, 853},
      {855, 856}, {880, 880}, {886, 886}, {960, 968}, {970, 977}, {992, 996}, {998, 998}};
  for (auto [lo, hi] : k3) {
    if (v >= lo && v <= hi) return true;
  }
  return false;
}

bool ipv4_valid(std::string_view s) {
  int parts = 0;
  size_t p = 0;
  while (p <= s.size()) {
    size_t dot = s.find('.', p);
    std::string_view part = s.substr(p, dot == kNone ? kNone : dot - p);
    if (part.empty() || part.size() > 3 || !std::all_of(part.begin(), part.end(), is_digit)) {
      return false;
    }
    if (part.size() > 1 && part[0] == '0') return false;
    int v = 0;
    for (char c : part) v = v * 10 + (c - '0');
    if (v > 255) return false;
    ++parts;
    if (dot == kNone) break;
    p = dot + 1;
  }
  return parts == 4;
}

bool ipv6_valid(std::string_view s) {
  if (s.size() < 2 || s.size() > 45) return false;
  char buf[64];
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  unsigned char addr[16];
  return inet_pton(AF_INET6, buf, addr) == 1;
}

PiiDetector::PiiDetector(const std::vector<std::string>& types) {
  for (const std::string& t : types) {
    if (t == "US_SSN") ssn_ = true;
    if (t == "CREDIT_CARD") card_ = true;
    if (t == "IBAN_CODE") iban_ = true;
    if (t == "EMAIL_ADDRESS") email_ = true;
    if (t == "PHONE_NUMBER") phone_ = true;
    if (t == "IP_ADDRESS") ip_ = true;
  }
}

std::vector<PiiMatch> PiiDetector::detect(std::string_view t) const {
  std::vector<PiiMatch> out;
  if (email_) find_emails(t, out);
  for (size_t i = 0; i < t.size();) {
    char c = t[i];
    bool candidate_start = is_digit(c) || c == '+' || c == '(' || is_alpha(c) || c == ':';
    if (!candidate_start || glued_before(t, i)) {
      ++i;
      continue;
    }
    const char* best_type = nullptr;
    size_t best_end = kNone;
    auto consider = [&](const char* type, size_t e) {
      if (e == kNone || glued_after(t, e)) return;
      if (best_end == kNone || e > best_end) {
        best_type = type;
        best_end = e;
      }
    };
    if (is_digit(c)) {
      if (ssn_) consider("US_SSN", match_ssn(t, i));
      if (card_) consider("CREDIT_CARD", match_card(t, i));
      if (ip_) consider("IP_ADDRESS", match_ipv4(t, i));
    }
    if (phone_ && (is_digit(c) || c == '+' || c == '(')) {
      consider("PHONE_NUMBER", match_nanp(t, i));
      if (c == '+') consider("PHONE_NUMBER", match_e164(t, i));
    }
    if (iban_ && is_alpha(c)) consider("IBAN_CODE", match_iban(t, i));
    if (ip_ && (is_hex(c) || c == ':')) consider("IP_ADDRESS", match_ipv6(t, i));
    if (best_type != nullptr) {
      out.push_back({best_type, i, best_end, 1.0f, false});
      i = best_end;
      continue;
    }
    // Skip the rest of a word so that candidates only start at word starts.
    if (is_alnum(c)) {
      while (i < t.size() && (is_alnum(t[i]) || t[i] == '_')) ++i;
    } else {
      ++i;
    }
  }
  resolve_overlaps(out);
  return out;
}

void resolve_overlaps(std::vector<PiiMatch>& m) {
  std::stable_sort(m.begin(), m.end(), [](const PiiMatch& a, const PiiMatch& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    return a.end - a.begin > b.end - b.begin;
  });
  std::vector<PiiMatch> kept;
  for (PiiMatch& x : m) {
    if (!kept.empty() && x.begin < kept.back().end) {
      if (x.end - x.begin > kept.back().end - kept.back().begin) kept.back() = std::move(x);
      continue;
    }
    kept.push_back(std::move(x));
  }
  m = std::move(kept);
}

std::string redact_pii(std::string_view text, const std::vector<PiiMatch>& matches) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (const PiiMatch& m : matches) {
    if (m.begin < pos || m.end > text.size()) continue;
    out.append(text.substr(pos, m.begin - pos));
    out += "[" + m.type + "]";
    pos = m.end;
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace turbine::semantic
