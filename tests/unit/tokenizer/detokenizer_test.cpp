// IncrementalDetokenizer: UTF-8 hold-back, stop strings, flush, the leading-space rule, and a
// randomised check that streaming equals decoding the whole sequence.
#include "tokenizer/detokenizer.h"

#include <gtest/gtest.h>

#include <random>

#include "test_vocab.h"
#include "tokenizer/utf8.h"

namespace turbine::tokenizer {
namespace {

using test_util::make_small_vocab;

const std::string kSp = "\xE2\x96\x81";  // "▁"
const std::string kFffd(kReplacementChar);
constexpr int32_t kBos = 1;
constexpr int32_t kEos = 2;
int32_t byte_token(unsigned char b) {
  return 3 + b;
}

class DetokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vocab_ = make_small_vocab({kSp + "Hello", kSp + "world", "!", "xS", "TO", "Py", "ST", "ART",
                               "STOP", kSp + "aSTOPb", kSp + "STOP", "abc", "e", "a", "b"});
    auto tok = make_tokenizer(vocab_);
    ASSERT_TRUE(tok.has_value()) << tok.status().to_string();
    tok_ = std::move(tok).value();
  }
  int32_t id(const std::string& piece) const {
    for (size_t i = 0; i < vocab_.tokens.size(); ++i) {
      if (vocab_.tokens[i] == piece) return static_cast<int32_t>(i);
    }
    ADD_FAILURE() << "no piece " << piece;
    return 0;
  }
  IncrementalDetokenizer make(int32_t prev, std::vector<std::string> stops = {},
                              bool skip_special = true) {
    return IncrementalDetokenizer(*tok_, prev, std::move(stops), skip_special);
  }

  model::VocabSpec vocab_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(DetokenizerTest, MultiByteCharacterIsEmittedOnlyWhenComplete) {
  auto d = make(kBos);
  EXPECT_EQ(d.push(id(kSp + "Hello")).text, "Hello");
  EXPECT_EQ(d.push(byte_token(0xC3)).text, "");
  EXPECT_EQ(d.push(byte_token(0xA9)).text, "\u00e9");
  const std::string emoji = "\U0001F600";
  for (size_t i = 0; i + 1 < emoji.size(); ++i) {
    EXPECT_EQ(d.push(byte_token(static_cast<unsigned char>(emoji[i]))).text, "") << i;
  }
  EXPECT_EQ(d.push(byte_token(static_cast<unsigned char>(emoji.back()))).text, emoji);
  EXPECT_EQ(d.flush(), "");
  EXPECT_EQ(d.text(), "Hello\u00e9" + emoji);
}

TEST_F(DetokenizerTest, IllFormedBytesBecomeReplacementCharacters) {
  auto d = make(id("!"));
  EXPECT_EQ(d.push(byte_token(0xFF)).text, kFffd);  // can never start a sequence: not held
  EXPECT_EQ(d.push(byte_token(0xC3)).text, "");
  EXPECT_EQ(d.push(id("!")).text, kFffd + "!");  // the sequence broke off
  EXPECT_EQ(d.push(byte_token(0xE6)).text, "");
  EXPECT_EQ(d.push(byte_token(0x97)).text, "");
  EXPECT_EQ(d.flush(), kFffd);  // incomplete at the end
  EXPECT_EQ(d.text(), kFffd + kFffd + "!" + kFffd);
}

TEST_F(DetokenizerTest, StopInsideOneToken) {
  auto d = make(kBos, {"STOP"});
  EXPECT_EQ(d.push(id(kSp + "Hello")).text, "Hello");
  const auto delta = d.push(id(kSp + "aSTOPb"));
  EXPECT_TRUE(delta.stopped);
  EXPECT_EQ(delta.text, " a");
  EXPECT_TRUE(d.stopped());
  EXPECT_EQ(d.text(), "Hello a");
  // Nothing after a stop, not even at flush.
  const auto after = d.push(id("!"));
  EXPECT_TRUE(after.stopped);
  EXPECT_EQ(after.text, "");
  EXPECT_EQ(d.flush(), "");
  EXPECT_EQ(d.text(), "Hello a");
}

TEST_F(DetokenizerTest, StopAcrossThreeTokens) {
  auto d = make(id("!"), {"STOP"});
  auto a = d.push(id("xS"));
  EXPECT_EQ(a.text, "x");  // "S" may start the stop string
  EXPECT_FALSE(a.stopped);
  auto b = d.push(id("TO"));
  EXPECT_EQ(b.text, "");
  EXPECT_FALSE(b.stopped);
  auto c = d.push(id("Py"));
  EXPECT_TRUE(c.stopped);
  EXPECT_EQ(c.text, "");
  EXPECT_EQ(d.text(), "x");  // neither the stop string nor the "y" after it
}

TEST_F(DetokenizerTest, StopAtTheVeryStart) {
  auto d = make(kBos, {"STOP"});
  // "▁STOP" after BOS loses its space, so the text begins with the stop string.
  const auto delta = d.push(id(kSp + "STOP"));
  EXPECT_TRUE(delta.stopped);
  EXPECT_EQ(delta.text, "");
  EXPECT_EQ(d.text(), "");
}

TEST_F(DetokenizerTest, PartialMatchThatIsNotAStopIsReleasedInOrder) {
  auto d = make(kBos, {"STOP"});
  EXPECT_EQ(d.push(id(kSp + "Hello")).text, "Hello");
  EXPECT_EQ(d.push(id("ST")).text, "");
  const auto delta = d.push(id("ART"));
  EXPECT_FALSE(delta.stopped);
  EXPECT_EQ(delta.text, "START");
  EXPECT_EQ(d.push(id("!")).text, "!");
  EXPECT_EQ(d.text(), "HelloSTART!");
}

TEST_F(DetokenizerTest, OverlappingPrefixesAndSeveralStops) {
  {
    // "aab": after "aaa" only "aa" may still start it, so one "a" is released.
    auto d = make(id("!"), {"aab"});
    EXPECT_EQ(d.push(id("a")).text, "");
    EXPECT_EQ(d.push(id("a")).text, "");
    EXPECT_EQ(d.push(id("a")).text, "a");
    const auto delta = d.push(id("b"));
    EXPECT_TRUE(delta.stopped);
    EXPECT_EQ(delta.text, "");
    EXPECT_EQ(d.text(), "a");
  }
  {
    // The earliest match wins when several stops complete at once.
    auto d = make(id("!"), {"abcd", "bce", ""});
    EXPECT_EQ(d.push(id("abc")).text, "");
    const auto delta = d.push(id("e"));
    EXPECT_TRUE(delta.stopped);
    EXPECT_EQ(delta.text, "a");
  }
}

TEST_F(DetokenizerTest, StopAfterMultiByteCharacter) {
  auto d = make(id("!"), {"\u00e9!"});
  EXPECT_EQ(d.push(id("a")).text, "a");
  EXPECT_EQ(d.push(byte_token(0xC3)).text, "");
  EXPECT_EQ(d.push(byte_token(0xA9)).text, "");  // "é" could begin "é!"
  const auto delta = d.push(id("!"));
  EXPECT_TRUE(delta.stopped);
  EXPECT_EQ(d.text(), "a");
}

TEST_F(DetokenizerTest, FlushReleasesHeldText) {
  auto d = make(id("!"), {"STOP"});
  EXPECT_EQ(d.push(id("!")).text, "!");
  EXPECT_EQ(d.push(id("ST")).text, "");
  EXPECT_EQ(d.push(byte_token(0xE6)).text, "");
  EXPECT_EQ(d.flush(), "ST" + kFffd);
  EXPECT_FALSE(d.stopped());
  EXPECT_EQ(d.flush(), "");  // only once
  EXPECT_EQ(d.push(id("!")).text, "");
  EXPECT_EQ(d.text(), "!ST" + kFffd);
}

TEST_F(DetokenizerTest, LeadingSpaceRule) {
  {
    auto d = make(kBos);
    EXPECT_EQ(d.push(id(kSp + "Hello")).text, "Hello");
    EXPECT_EQ(d.push(id(kSp + "world")).text, " world");
  }
  {
    auto d = make(id("!"));
    EXPECT_EQ(d.push(id(kSp + "Hello")).text, " Hello");
  }
  {
    auto d = make(-1);  // no prompt at all: same as after BOS
    EXPECT_EQ(d.push(id(kSp + "Hello")).text, "Hello");
  }
  {
    auto d = make(kBos);  // byte tokens keep their space
    EXPECT_EQ(d.push(byte_token(' ')).text, " ");
  }
}

TEST_F(DetokenizerTest, SpecialTokens) {
  {
    auto d = make(kBos, {}, /*skip_special=*/true);
    EXPECT_EQ(d.push(id(kSp + "Hello")).text, "Hello");
    EXPECT_EQ(d.push(kEos).text, "");
    EXPECT_EQ(d.push(-7).text, "");  // out of range: nothing, no crash
  }
  {
    auto d = make(kBos, {}, /*skip_special=*/false);
    EXPECT_EQ(d.push(id(kSp + "Hello")).text, "Hello");
    EXPECT_EQ(d.push(kEos).text, "</s>");
  }
}

// Streaming must give exactly the sanitised whole-sequence decode, cut at the first stop.
TEST_F(DetokenizerTest, StreamingEqualsWholeDecode) {
  std::mt19937 rng(42);
  // Mostly byte tokens so that UTF-8 sequences split, break and complete in every way.
  std::vector<int32_t> candidates = {
      id(kSp + "Hello"), id("xS"),         id("TO"),         id("Py"),         id("ST"),
      id("a"),           id("b"),          id("e"),          byte_token(0xC3), byte_token(0xA9),
      byte_token(0xE6),  byte_token(0x97), byte_token(0xA5), byte_token(0xF0), byte_token(0x9F),
      byte_token(0x98),  byte_token(0x80), byte_token(0xFF), byte_token('S'),  kEos};
  std::uniform_int_distribution<size_t> pick(0, candidates.size() - 1);
  const std::vector<std::vector<std::string>> stop_sets = {
      {}, {"STOP"}, {"ab", "\u00e9"}, {"e\u00e9a", "TOP"}};
  for (int iter = 0; iter < 400; ++iter) {
    std::vector<int32_t> ids;
    for (int n = 1 + iter % 25; n > 0; --n) ids.push_back(candidates[pick(rng)]);
    const auto& stops = stop_sets[iter % stop_sets.size()];
    std::vector<int32_t> with_bos = {kBos};
    with_bos.insert(with_bos.end(), ids.begin(), ids.end());
    const std::string whole = sanitize_utf8(tok_->decode(with_bos, true));
    size_t cut = std::string::npos;
    for (const auto& s : stops) cut = std::min(cut, whole.find(s));
    const std::string expected = whole.substr(0, cut);

    auto d = make(kBos, stops);
    std::string streamed;
    bool stopped = false;
    for (int32_t t : ids) {
      const auto delta = d.push(t);
      streamed += delta.text;
      if (delta.stopped) {
        stopped = true;
        break;
      }
    }
    streamed += d.flush();
    ASSERT_EQ(streamed, expected) << "iteration " << iter;
    ASSERT_EQ(d.text(), expected);
    ASSERT_EQ(stopped, cut != std::string::npos) << "iteration " << iter;
  }
}

}  // namespace
}  // namespace turbine::tokenizer
