// PII detection without a model: detectors that find candidates and validate them.
//
// Types and labels follow the semantic router's PII model (Presidio names, BIO labels): a match
// of type US_SSN is reported as "B-US_SSN". Built-in detectors, all with a fixed score of 1.0
// because what they report is validated, not guessed:
//   US_SSN         ddd-dd-dddd / ddd dd dddd; 9 bare digits only after a context word (ssn,
//                  social security); area 000, 666 and 900-999, group 00, serial 0000 rejected
//   CREDIT_CARD    13-19 digits, bare or grouped (4-4-4-4[-3], 4-6-5, 4-6-4) with one separator
//                  kind; Luhn and the issuer's prefix/length (Visa, Mastercard, Amex, Discover,
//                  JCB, Diners, UnionPay, Maestro)
//   IBAN_CODE      country code + check digits + BBAN, bare or in groups of four; the country's
//                  registered length and ISO 7064 mod-97 = 1
//   EMAIL_ADDRESS  local@domain.tld with a dotted domain and an alphabetic TLD
//   PHONE_NUMBER   NANP (NPA and NXX from 2-9, not N11, NPA not N9X), written with separators or
//                  with +1, 10 bare digits only after a context word; E.164 "+CC ..." with a real
//                  country calling code and 8-15 digits
//   IP_ADDRESS     dotted-quad IPv4 (0-255, no leading zeros), IPv6 accepted by inet_pton
// Every detector refuses a candidate glued to a letter or digit (order ids, version strings).
// Thread-safe: a PiiDetector is immutable after construction.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace turbine::semantic {

struct PiiMatch {
  std::string type;  // bare: "US_SSN"
  size_t begin = 0;  // bytes into the scanned text
  size_t end = 0;
  float score = 1.0f;
  bool from_model = false;
  std::string label() const { return "B-" + type; }
};

// "B-US_SSN" / "I-US_SSN" / "E-.." / "O-.." -> "US_SSN".
std::string_view strip_bio_prefix(std::string_view label);
bool is_builtin_pii_type(std::string_view bare_type);
std::string builtin_pii_type_list();  // "US_SSN, CREDIT_CARD, ..."

// Validators, exposed for tests and the corpus generator. Inputs are digits only where named so.
bool ssn_valid(std::string_view nine_digits);
bool luhn_valid(std::string_view digits);
bool card_issuer_valid(std::string_view digits);  // prefix and length of a known issuer
bool iban_valid(std::string_view compact);        // upper-case, no spaces
int iban_length(std::string_view country);        // 0 when the country has no IBAN
bool nanp_valid(std::string_view ten_digits);
bool calling_code_valid(std::string_view digits);  // an assigned country calling code
bool ipv4_valid(std::string_view text);
bool ipv6_valid(std::string_view text);

class PiiDetector {
 public:
  // `types`: bare built-in types to run (unknown names are ignored; the config refuses them).
  explicit PiiDetector(const std::vector<std::string>& types);
  // Every validated match, sorted by begin, non-overlapping (the longer match wins).
  std::vector<PiiMatch> detect(std::string_view text) const;

 private:
  bool ssn_ = false, card_ = false, iban_ = false, email_ = false, phone_ = false, ip_ = false;
};

// Replaces each match with "[TYPE]". `matches` sorted by begin and non-overlapping.
std::string redact_pii(std::string_view text, const std::vector<PiiMatch>& matches);

// Sorts by begin and drops matches that overlap an earlier, longer one.
void resolve_overlaps(std::vector<PiiMatch>& matches);

}  // namespace turbine::semantic
