#include "semantic_corpus.h"

#include <algorithm>
#include <random>

#include "semantic/pii.h"

namespace turbine::semantic::corpus {
namespace {

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool coin(double p = 0.5) { return std::bernoulli_distribution(p)(rng_); }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(uniform(0, static_cast<int>(v.size()) - 1))];
  }
  std::string digits(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += static_cast<char>('0' + uniform(0, 9));
    return s;
  }
  std::string pad(int v, int width) {
    std::string s = std::to_string(v);
    while (static_cast<int>(s.size()) < width) s = "0" + s;
    return s;
  }

 private:
  std::mt19937_64 rng_;
};

char luhn_digit(const std::string& body) {
  // The check digit that makes body + digit pass Luhn.
  for (char d = '0'; d <= '9'; ++d) {
    if (luhn_valid(body + d)) return d;
  }
  return '0';
}

std::string group(const std::string& d, const std::vector<int>& sizes, char sep) {
  std::string out;
  size_t p = 0;
  for (size_t i = 0; i < sizes.size() && p < d.size(); ++i) {
    if (i > 0) out += sep;
    out += d.substr(p, static_cast<size_t>(sizes[i]));
    p += static_cast<size_t>(sizes[i]);
  }
  if (p < d.size()) out += sep + d.substr(p);
  return out;
}

// --- valid values -------------------------------------------------------------------------
std::string ssn_digits(Gen& g) {
  int area;
  do {
    area = g.uniform(1, 899);
  } while (area == 666);
  return g.pad(area, 3) + g.pad(g.uniform(1, 99), 2) + g.pad(g.uniform(1, 9999), 4);
}

std::string card_digits(Gen& g, bool& amex) {
  struct Issuer {
    std::vector<std::string> prefixes;
    int length;
  };
  static const std::vector<Issuer> kIssuers = {
      {{"4"}, 16},
      {{"4"}, 13},
      {{"51", "52", "53", "54", "55", "2221", "2720", "2500"}, 16},
      {{"34", "37"}, 15},
      {{"6011", "65", "644"}, 16},
      {{"3528", "3589", "3550"}, 16},
      {{"36", "38"}, 14},
      {{"62"}, 16},
      {{"4"}, 19}};
  const Issuer& is = g.pick(kIssuers);
  amex = is.length == 15;
  std::string body = g.pick(is.prefixes);
  body += g.digits(is.length - 1 - static_cast<int>(body.size()));
  return body + luhn_digit(body);
}

std::string iban(Gen& g, bool valid) {
  struct Country {
    const char* cc;
    std::string (*bban)(Gen&);
  };
  static const std::vector<Country> kCountries = {
      {"DE", [](Gen& x) { return x.digits(18); }},
      {"GB", [](Gen& x) { return std::string("NWBK") + x.digits(14); }},
      {"FR", [](Gen& x) { return x.digits(23); }},
      {"NL", [](Gen& x) { return std::string("ABNA") + x.digits(10); }},
      {"ES", [](Gen& x) { return x.digits(20); }},
      {"IT", [](Gen& x) { return std::string("X") + x.digits(22); }},
      {"CH", [](Gen& x) { return x.digits(17); }},
      {"BE", [](Gen& x) { return x.digits(12); }},
      {"PL", [](Gen& x) { return x.digits(24); }},
      {"NO", [](Gen& x) { return x.digits(11); }}};
  const Country& c = g.pick(kCountries);
  std::string bban = c.bban(g);
  std::string cc = c.cc;
  for (int check = 2; check <= 98; ++check) {
    std::string candidate = cc + g.pad(check, 2) + bban;
    if (iban_valid(candidate) == valid) {
      if (valid || g.coin(0.3)) return candidate;
    }
  }
  return cc + "00" + bban;
}

std::string email(Gen& g) {
  static const std::vector<std::string> kFirst = {"john",    "maria",  "wei",        "a.khan",
                                                  "sam_o",   "li.na",  "peter+news", "o'neil",
                                                  "dev-ops", "j.doe42"};
  static const std::vector<std::string> kDomains = {
      "example.com", "mail.example.org", "uni-bonn.de", "company.co.uk",
      "startup.io",  "gmail.com",        "outlook.fr",  "corp.internal.net"};
  std::string local = g.pick(kFirst);
  if (local == "o'neil") local = "oneil";
  return local + "@" + g.pick(kDomains);
}

std::string nanp_digits(Gen& g) {
  auto part = [&](bool npa) {
    for (;;) {
      std::string s = std::to_string(g.uniform(2, 9)) + std::to_string(g.uniform(0, npa ? 8 : 9)) +
                      std::to_string(g.uniform(0, 9));
      if (!(s[1] == '1' && s[2] == '1')) return s;
    }
  };
  return part(true) + part(false) + g.digits(4);
}

std::string phone(Gen& g) {
  if (g.coin(0.3)) {
    static const std::vector<std::string> kIntl = {
        "+44 20 7946 0958", "+49 30 1234567",   "+33 1 23 45 67 89", "+81 3-1234-5678",
        "+91 98765 43210",  "+61 2 9374 4000",  "+34 912 345 678",   "+55 11 98765-4321",
        "+353 1 234 5678",  "+86 10 8888 6666", "+7 495 123-45-67",  "+27 21 123 4567"};
    return g.pick(kIntl);
  }
  std::string d = nanp_digits(g);
  switch (g.uniform(0, 5)) {
    case 0: return "(" + d.substr(0, 3) + ") " + d.substr(3, 3) + "-" + d.substr(6);
    case 1: return d.substr(0, 3) + "-" + d.substr(3, 3) + "-" + d.substr(6);
    case 2: return d.substr(0, 3) + "." + d.substr(3, 3) + "." + d.substr(6);
    case 3: return "+1 " + d.substr(0, 3) + " " + d.substr(3, 3) + " " + d.substr(6);
    case 4: return "+1-" + d.substr(0, 3) + "-" + d.substr(3, 3) + "-" + d.substr(6);
    default: return "1-" + d.substr(0, 3) + "-" + d.substr(3, 3) + "-" + d.substr(6);
  }
}

std::string ip(Gen& g) {
  if (g.coin(0.7)) {
    return std::to_string(g.uniform(1, 223)) + "." + std::to_string(g.uniform(0, 255)) + "." +
           std::to_string(g.uniform(0, 255)) + "." + std::to_string(g.uniform(1, 254));
  }
  static const std::vector<std::string> kV6 = {
      "2001:db8::1", "fe80::1ff:fe23:4567:890a", "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
      "::1",         "2606:4700:4700::1111",     "fd12:3456:789a:1::42"};
  return g.pick(kV6);
}

// --- near-misses (never PII) ---------------------------------------------------------------
std::string near_miss(Gen& g) {
  switch (g.uniform(0, 15)) {
    case 0: {  // SSN-shaped with a forbidden area
      static const std::vector<std::string> kAreas = {"000", "666", "900", "987", "999"};
      return g.pick(kAreas) + "-" + g.pad(g.uniform(1, 99), 2) + "-" + g.pad(g.uniform(1, 9999), 4);
    }
    case 1: return g.pad(g.uniform(1, 665), 3) + "-00-" + g.pad(g.uniform(1, 9999), 4);
    case 2: return g.pad(g.uniform(1, 665), 3) + "-" + g.pad(g.uniform(1, 99), 2) + "-0000";
    case 3: {  // card with a broken check digit
      bool amex = false;
      std::string d = card_digits(g, amex);
      d.back() = static_cast<char>('0' + (d.back() - '0' + g.uniform(1, 9)) % 10);
      return g.coin() ? d : group(d, {4, 4, 4, 4, 4}, ' ');
    }
    case 4: {  // Luhn-valid 16 digits with no issuer
      std::string body = "9" + g.digits(14);
      return body + luhn_digit(body);
    }
    case 5: return iban(g, false);
    case 6: {  // NANP-shaped with an invalid area or exchange code
      std::string d = std::to_string(g.uniform(0, 1)) + g.digits(2) + g.digits(7);
      return d.substr(0, 3) + "-" + d.substr(3, 3) + "-" + d.substr(6);
    }
    case 7: return "ORD-" + g.digits(4) + "-" + g.digits(4) + "-" + g.digits(4);
    case 8: return "#" + g.digits(10);
    case 9: return "1Z" + g.digits(3) + "AA" + g.digits(10);
    case 10:
      return std::to_string(g.uniform(2000, 2030)) + "-" + g.pad(g.uniform(1, 12), 2) + "-" +
             g.pad(g.uniform(1, 28), 2);
    case 11:
      return "v" + std::to_string(g.uniform(1, 9)) + "." + std::to_string(g.uniform(0, 20)) + "." +
             std::to_string(g.uniform(0, 99)) + "." + std::to_string(g.uniform(0, 9));
    case 12:
      return std::to_string(g.uniform(256, 999)) + "." + std::to_string(g.uniform(0, 255)) + "." +
             std::to_string(g.uniform(0, 255)) + "." + std::to_string(g.uniform(0, 255));
    case 13: return g.digits(10);  // a bare 10-digit number with no phone context
    case 14: return "INV-" + std::to_string(g.uniform(2019, 2025)) + "-" + g.digits(6);
    default:
      return std::to_string(g.uniform(10, 23)) + ":" + g.pad(g.uniform(0, 59), 2) + ":" +
             g.pad(g.uniform(0, 59), 2);
  }
}

struct Piece {
  std::string prefix;  // sentence text before the value
  std::string suffix;
};

const std::vector<Piece>& contexts(const std::string& type) {
  static const std::map<std::string, std::vector<Piece>> kContexts = {
      {"US_SSN",
       {{"My SSN is ", "."},
        {"social security number: ", ""},
        {"SSN ", " (please verify)"},
        {"The applicant's SSN, ", ", was entered twice."},
        {"ssn=", ";"}}},
      {"CREDIT_CARD",
       {{"Charge it to my card ", " please."},
        {"card number: ", ""},
        {"Use ", " for the deposit."},
        {"The Visa on file (", ") expired."},
        {"CC: ", "\n"}}},
      {"IBAN_CODE",
       {{"Wire the refund to IBAN ", "."},
        {"IBAN: ", ""},
        {"Account ", " at our bank."},
        {"Please use (", ") for transfers."}}},
      {"EMAIL_ADDRESS",
       {{"Email me at ", "."},
        {"contact: ", ""},
        {"Reply to <", "> by Friday."},
        {"cc ", ", thanks"},
        {"Her address is ", " if you need it."}}},
      {"PHONE_NUMBER",
       {{"Call me at ", " tomorrow."},
        {"Phone: ", ""},
        {"You can reach the office on ", "."},
        {"mobile ", ", evenings only"},
        {"Text ", " when you arrive."}}},
      {"IP_ADDRESS",
       {{"The server at ", " is down."},
        {"IP: ", ""},
        {"Requests come from ", " every night."},
        {"ping ", " and report back"},
        {"allowlist (", ") updated"}}},
  };
  return kContexts.at(type);
}

const std::vector<std::string>& near_miss_contexts() {
  static const std::vector<std::string> kCtx = {
      "Your order ", "Reference ",     "Ticket ", "Version ", "Tracking id ",
      "Invoice ",    "The value was ", "Build ",  "Code ",    "Timestamp "};
  return kCtx;
}

const std::vector<std::string>& fillers() {
  static const std::vector<std::string> kFill = {
      "Hi team, ",
      "Quick question: ",
      "",
      "As discussed yesterday, ",
      "Following up on the ticket. ",
      "Thanks for the help so far! ",
      "I have 2 kids and 3 dogs. ",
      "The meeting moved to 10:30 on 2024-05-14. ",
      "We shipped 1,250 units in Q3. ",
      "Bitte prüfen. ",
  };
  return kFill;
}

}  // namespace

std::vector<LabeledText> generate_pii_corpus(uint64_t seed, size_t n) {
  Gen g(seed);
  static const std::vector<std::string> kTypes = {"US_SSN",        "CREDIT_CARD",  "IBAN_CODE",
                                                  "EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS"};
  std::vector<LabeledText> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    LabeledText t;
    t.text = g.pick(fillers());
    int values = g.uniform(0, 2);
    int misses = g.uniform(values == 0 ? 1 : 0, 2);
    std::vector<int> order;
    for (int k = 0; k < values; ++k) order.push_back(1);
    for (int k = 0; k < misses; ++k) order.push_back(0);
    std::shuffle(order.begin(), order.end(), std::mt19937_64(seed + i));
    for (int kind : order) {
      if (!t.text.empty() && t.text.back() != ' ' && t.text.back() != '\n') t.text += ' ';
      if (kind == 0) {
        t.text += g.pick(near_miss_contexts()) + near_miss(g) + ".";
        continue;
      }
      const std::string& type = g.pick(kTypes);
      std::string value;
      if (type == "US_SSN") {
        std::string d = ssn_digits(g);
        int f = g.uniform(0, 2);
        value = f == 0   ? d.substr(0, 3) + "-" + d.substr(3, 2) + "-" + d.substr(5)
                : f == 1 ? d.substr(0, 3) + " " + d.substr(3, 2) + " " + d.substr(5)
                         : d;  // bare: only in contexts that name it (all SSN contexts do)
      } else if (type == "CREDIT_CARD") {
        bool amex = false;
        std::string d = card_digits(g, amex);
        int f = g.uniform(0, 2);
        if (f == 0) {
          value = d;
        } else {
          char sep = f == 1 ? ' ' : '-';
          value = amex ? group(d, {4, 6, 5}, sep) : group(d, {4, 4, 4, 4, 4}, sep);
        }
      } else if (type == "IBAN_CODE") {
        std::string c = iban(g, true);
        value = g.coin() ? c : group(c, std::vector<int>(9, 4), ' ');
      } else if (type == "EMAIL_ADDRESS") {
        value = email(g);
      } else if (type == "PHONE_NUMBER") {
        value = phone(g);
      } else {
        value = ip(g);
      }
      const Piece& p = g.pick(contexts(type));
      t.text += p.prefix;
      size_t begin = t.text.size();
      t.text += value;
      t.pii.push_back({type, begin, t.text.size()});
      t.text += p.suffix;
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::map<std::string, TypeScore> evaluate_pii(const std::vector<LabeledText>& corpus) {
  PiiDetector det(
      {"US_SSN", "CREDIT_CARD", "IBAN_CODE", "EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS"});
  std::map<std::string, TypeScore> s;
  for (const LabeledText& t : corpus) {
    std::vector<PiiMatch> found = det.detect(t.text);
    std::vector<bool> used(t.pii.size(), false);
    for (const PiiMatch& m : found) {
      bool ok = false;
      for (size_t k = 0; k < t.pii.size(); ++k) {
        if (!used[k] && t.pii[k].type == m.type && t.pii[k].begin == m.begin &&
            t.pii[k].end == m.end) {
          used[k] = true;
          ok = true;
          break;
        }
      }
      ++(ok ? s[m.type].tp : s[m.type].fp);
    }
    for (size_t k = 0; k < t.pii.size(); ++k) {
      if (!used[k]) ++s[t.pii[k].type].fn;
    }
  }
  return s;
}

}  // namespace turbine::semantic::corpus
