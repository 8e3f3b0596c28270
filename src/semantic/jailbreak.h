// Jailbreak / prompt-injection detection without a model: pattern families with weights.
//
// The text is normalised first (NFKC + case fold + default-ignorable characters such as
// zero-width spaces removed, through utf8proc; Cyrillic/Greek look-alikes mapped to Latin; digits
// and symbols inside words read as leetspeak, "1gn0r3" -> "ignore"; letters spaced out one by
// one joined, "i g n o r e" -> "ignore"). Each family (ignore-instructions, unrestricted persona,
// system-prompt extraction, delimiter/role injection, refusal suppression, false authority,
// fictional framing of harm, harmful intent, encoded payloads, ...) contributes its weight once;
// the score is 1 - prod(1 - w). Long base64 runs are decoded and scored too. When the text is a
// question about attacks ("what is a prompt injection", "how do I defend against jailbreaks") the
// score is damped, mirroring the semantic router's contrastive (attack - benign) scoring.
// The detector's rates on our corpora are in docs/PERFORMANCE.md.
// Thread-safe: immutable after construction.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace turbine::semantic {

struct JailbreakResult {
  float score = 0.0f;                 // [0, 1]
  std::vector<std::string> families;  // matched family names, in table order
};

// The normalised form the patterns see (exposed for tests); `leet`: digits and symbols inside
// words read as letters.
std::string normalize_for_guard(std::string_view text, bool leet = true);

class JailbreakDetector {
 public:
  JailbreakDetector();
  ~JailbreakDetector();
  JailbreakDetector(const JailbreakDetector&) = delete;
  JailbreakDetector& operator=(const JailbreakDetector&) = delete;

  JailbreakResult score(std::string_view text) const;

 private:
  JailbreakResult score_normalized(std::string_view text) const;
  struct Tables;
  std::unique_ptr<Tables> tables_;
};

}  // namespace turbine::semantic
