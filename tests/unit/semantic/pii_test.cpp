#include "semantic/pii.h"

#include <gtest/gtest.h>

#include "semantic_corpus.h"

namespace turbine::semantic {
namespace {

const std::vector<std::string> kAll = {"US_SSN",        "CREDIT_CARD",  "IBAN_CODE",
                                       "EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS"};

// "TYPE=value" for each detection, in order.
std::vector<std::string> detect(std::string_view text) {
  PiiDetector d(kAll);
  std::vector<std::string> out;
  for (const PiiMatch& m : d.detect(text)) {
    out.push_back(m.type + "=" + std::string(text.substr(m.begin, m.end - m.begin)));
  }
  return out;
}

using V = std::vector<std::string>;

TEST(PiiValidators, Ssn) {
  EXPECT_TRUE(ssn_valid("123456789"));
  EXPECT_FALSE(ssn_valid("000123456"));
  EXPECT_FALSE(ssn_valid("666123456"));
  EXPECT_FALSE(ssn_valid("900123456"));
  EXPECT_FALSE(ssn_valid("999123456"));
  EXPECT_FALSE(ssn_valid("123006789"));
  EXPECT_FALSE(ssn_valid("123450000"));
  EXPECT_TRUE(ssn_valid("899010001"));
}

TEST(PiiValidators, CardsAndIban) {
  EXPECT_TRUE(luhn_valid("4111111111111111"));
  EXPECT_FALSE(luhn_valid("4111111111111112"));
  EXPECT_TRUE(card_issuer_valid("4111111111111111"));
  EXPECT_TRUE(card_issuer_valid("378282246310005"));   // Amex, 15
  EXPECT_FALSE(card_issuer_valid("37828224631000"));   // Amex, 14
  EXPECT_TRUE(card_issuer_valid("5555555555554444"));  // Mastercard
  EXPECT_TRUE(card_issuer_valid("2221000000000009"));  // Mastercard 2-series
  EXPECT_FALSE(card_issuer_valid("9111111111111111"));
  EXPECT_TRUE(iban_valid("DE89370400440532013000"));
  EXPECT_TRUE(iban_valid("GB29NWBK60161331926819"));
  EXPECT_FALSE(iban_valid("DE88370400440532013000"));  // check digits
  EXPECT_FALSE(iban_valid("DE8937040044053201300"));   // length
  EXPECT_EQ(iban_length("NO"), 15);
  EXPECT_EQ(iban_length("US"), 0);
}

TEST(PiiValidators, PhonesAndIps) {
  EXPECT_TRUE(nanp_valid("4155552671"));
  EXPECT_FALSE(nanp_valid("1235552671"));  // NPA starts with 1
  EXPECT_FALSE(nanp_valid("9115552671"));  // N11
  EXPECT_FALSE(nanp_valid("4925552671"));  // N9X area codes are reserved
  EXPECT_TRUE(nanp_valid("4195552671"));
  EXPECT_FALSE(nanp_valid("4150552671"));  // NXX starts with 0
  EXPECT_TRUE(calling_code_valid("44"));
  EXPECT_TRUE(calling_code_valid("353"));
  EXPECT_FALSE(calling_code_valid("35"));
  EXPECT_TRUE(ipv4_valid("192.168.0.1"));
  EXPECT_FALSE(ipv4_valid("256.1.1.1"));
  EXPECT_FALSE(ipv4_valid("01.2.3.4"));
  EXPECT_TRUE(ipv6_valid("2001:db8::1"));
  EXPECT_FALSE(ipv6_valid("12:30:45"));
}

TEST(PiiDetector, TheGuideExample) {
  EXPECT_EQ(detect("My SSN is 123-45-6789"), V{"US_SSN=123-45-6789"});
}

TEST(PiiDetector, FindsEachTypeInContext) {
  EXPECT_EQ(detect("card 4111 1111 1111 1111 exp 12/27"), V{"CREDIT_CARD=4111 1111 1111 1111"});
  EXPECT_EQ(detect("Amex 3782-822463-10005."), V{"CREDIT_CARD=3782-822463-10005"});
  EXPECT_EQ(detect("IBAN DE89 3704 0044 0532 0130 00, thanks"),
            V{"IBAN_CODE=DE89 3704 0044 0532 0130 00"});
  EXPECT_EQ(detect("mail <j.doe+x@mail.example.co.uk>."),
            V{"EMAIL_ADDRESS=j.doe+x@mail.example.co.uk"});
  EXPECT_EQ(detect("call (415) 555-2671 or +44 20 7946 0958"),
            (V{"PHONE_NUMBER=(415) 555-2671", "PHONE_NUMBER=+44 20 7946 0958"}));
  EXPECT_EQ(detect("Phone: 4155552671"), V{"PHONE_NUMBER=4155552671"});
  EXPECT_EQ(detect("hosts 10.0.0.1 and fe80::1ff:fe23:4567:890a."),
            (V{"IP_ADDRESS=10.0.0.1", "IP_ADDRESS=fe80::1ff:fe23:4567:890a"}));
  EXPECT_EQ(detect("ssn: 123456789"), V{"US_SSN=123456789"});
}

TEST(PiiDetector, RefusesNearMisses) {
  EXPECT_TRUE(detect("SSN 000-12-3456 or 666-12-3456 or 912-34-5678").empty());
  EXPECT_TRUE(detect("SSN 123-00-4567 and 123-45-0000").empty());
  EXPECT_TRUE(detect("card 4111 1111 1111 1112").empty());
  EXPECT_TRUE(detect("order ORD-123-45-6789 and ref A123-45-6789").empty());
  EXPECT_TRUE(detect("order number 4155552671 shipped").empty());  // bare digits, no context
  EXPECT_TRUE(detect("call 123-456-7890").empty());                // NPA 1xx
  EXPECT_TRUE(detect("version v1.2.3.4 and 1.2.3.4.5 and 300.1.1.1").empty());
  EXPECT_TRUE(detect("at 10:30:45 on 2024-05-14").empty());
  EXPECT_TRUE(detect("std::vector and a::b").empty());
  EXPECT_TRUE(detect("IBAN DE88 3704 0044 0532 0130 00").empty());
  EXPECT_TRUE(detect("mail me at john@localhost or @handle").empty());
}

TEST(PiiDetector, OnlyConfiguredTypes) {
  PiiDetector only_email({"EMAIL_ADDRESS"});
  auto m = only_email.detect("a@b.com 123-45-6789");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].type, "EMAIL_ADDRESS");
}

TEST(PiiDetector, Redacts) {
  std::string text = "SSN 123-45-6789, mail a@b.com";
  PiiDetector d(kAll);
  EXPECT_EQ(redact_pii(text, d.detect(text)), "SSN [US_SSN], mail [EMAIL_ADDRESS]");
  EXPECT_EQ(strip_bio_prefix("B-US_SSN"), "US_SSN");
  EXPECT_EQ(strip_bio_prefix("I-EMAIL_ADDRESS"), "EMAIL_ADDRESS");
  EXPECT_EQ(strip_bio_prefix("US_SSN"), "US_SSN");
}

TEST(PiiDetector, NeverCrashesOnOddBytes) {
  std::string junk;
  for (int i = 0; i < 4096; ++i) junk.push_back(static_cast<char>((i * 7919) & 0xFF));
  PiiDetector d(kAll);
  (void)d.detect(junk);
  (void)d.detect("");
  (void)d.detect("+");
  (void)d.detect("(");
  (void)d.detect("@");
  SUCCEED();
}

// Must-show 2: >= 2,000 generated texts, precision and recall >= 0.99 for every validated type.
TEST(PiiCorpus, PrecisionAndRecallPerType) {
  auto corpus = corpus::generate_pii_corpus(2024, 2500);
  ASSERT_GE(corpus.size(), 2000u);
  auto scores = corpus::evaluate_pii(corpus);
  for (const std::string& type : kAll) {
    const auto& s = scores[type];
    EXPECT_GE(s.tp, 100u) << type;
    EXPECT_GE(s.precision(), 0.99) << type << " tp=" << s.tp << " fp=" << s.fp;
    EXPECT_GE(s.recall(), 0.99) << type << " tp=" << s.tp << " fn=" << s.fn;
  }
}

TEST(PiiCorpus, GeneratorIsSeeded) {
  auto a = corpus::generate_pii_corpus(7, 50);
  auto b = corpus::generate_pii_corpus(7, 50);
  auto c = corpus::generate_pii_corpus(8, 50);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].text, b[i].text);
  bool differs = false;
  for (size_t i = 0; i < a.size(); ++i) differs |= a[i].text != c[i].text;
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace turbine::semantic
