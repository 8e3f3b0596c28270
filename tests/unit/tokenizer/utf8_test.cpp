#include "tokenizer/utf8.h"

#include <gtest/gtest.h>

namespace turbine::tokenizer {
namespace {

const std::string kFffd(kReplacementChar);

TEST(Utf8, WellFormedPassesThrough) {
  const std::string s = "a\u00e9\u65e5\U0001F600z";
  std::string out;
  EXPECT_EQ(append_sanitized_utf8(s, out), 0u);
  EXPECT_EQ(out, s);
}

TEST(Utf8, IncompleteTailIsHeldUnlessFinal) {
  const std::string emoji = "\U0001F600";
  for (size_t cut = 1; cut < emoji.size(); ++cut) {
    std::string out;
    EXPECT_EQ(append_sanitized_utf8("x" + emoji.substr(0, cut), out), cut);
    EXPECT_EQ(out, "x");
    std::string final_out;
    EXPECT_EQ(append_sanitized_utf8("x" + emoji.substr(0, cut), final_out, true), 0u);
    EXPECT_EQ(final_out, "x" + kFffd);
  }
}

TEST(Utf8, MaximalSubpartsBecomeOneReplacementEach) {
  // Stray continuation, invalid lead bytes, truncated sequence followed by ASCII, overlong,
  // surrogate, above U+10FFFF.
  EXPECT_EQ(sanitize_utf8("\x80"), kFffd);
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), kFffd + kFffd);
  EXPECT_EQ(sanitize_utf8("\xE6\x97(x"), kFffd + "(x");
  EXPECT_EQ(sanitize_utf8("\xE0\x80\x80"), kFffd + kFffd + kFffd);
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);
  EXPECT_EQ(sanitize_utf8("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x98"), kFffd);
  EXPECT_EQ(sanitize_utf8("\xFF\xC3\xA9"), kFffd + "\u00e9");
  // An ill-formed byte is not held even when it is last in a non-final chunk.
  std::string out;
  EXPECT_EQ(append_sanitized_utf8("a\xFF", out), 0u);
  EXPECT_EQ(out, "a" + kFffd);
}

}  // namespace
}  // namespace turbine::tokenizer
