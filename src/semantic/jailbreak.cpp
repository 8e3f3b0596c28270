#include "semantic/jailbreak.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "semantic/keyword.h"

namespace turbine::semantic {
namespace {

// Words the families share; `W` is a gap of a few words inside one sentence.
#define W "[^.!?\\n]{0,48}?"
#define INSTR                                                                                   \
  "(?:instructions?|prompts?|rules?|guidelines?|directives?|guardrails?|restrictions?|"         \
  "constraints?|polic(?:y|ies)|programming|training|filters?|safeguards?|protocols?|commands?|" \
  "orders|context|directions?)"
#define HARM                                                                                       \
  "(?:hack|hacking|break into|steal|bomb|explosive|weapon|meth|drugs?|poison|kill|murder|malware|" \
  "ransomware|virus|keylogger|phishing|napalm|nerve agent|bioweapon|launder|counterfeit|"          \
  "credit card numbers|passwords?|exploit|ddos|untraceable|illegal)"

struct Family {
  const char* name;
  float weight;
  std::vector<const char*> patterns;
};

// Weights: a family at or above the default threshold (0.7) blocks alone; the weaker ones only
// in combination. Patterns run on normalize_for_guard output (lower case, single spaces).
const std::vector<Family>& families() {
  static const std::vector<Family> kFamilies = {
      {"ignore_instructions",
       0.8f,
       {"\\b(?:ignore|disregard|forget|override|overrule|bypass|skip|abandon|set aside|discard|"
        "throw out|drop|neglect|nullify|cancel|erase|wipe|delete|clear)\\b" W
        "\\b(?:all|any|every|the|your|previous|prior|above|earlier|preceding|initial|original|"
        "system|safety|these|those|old|existing|developer|default)\\b" W "\\b" INSTR "\\b",
        "\\b(?:ignore|disregard|forget)\\b (?:everything|all|anything) (?:you(?:'ve| have)? "
        "(?:were|been) told|(?:said|written|stated|mentioned) (?:above|before|previously)|above|"
        "before this)",
        "\\bnew (?:instructions|rules|system prompt|directive)s?\\s*:",
        "\\b(?:ignore|disregard|bypass|override) (?:all |any |the |your )?(?:content |safety "
        "|usage "
        ")?(?:policies|guidelines|guardrails|restrictions|filters|safeguards)\\b",
        "\\b(?:your|the) (?:previous|prior|old|original) " INSTR
        " (?:are|is|were|have been) (?:void|cancel+ed|revoked|obsolete|replaced|overridden|no "
        "longer)",
        "\\bfrom now on\\b" W "\\b(?:ignore|disregard|no longer (?:follow|obey|bound))"}},
      {"unrestricted_persona",
       0.8f,
       {"\\bdo anything now\\b",
        "\\b(?:you are|you're|act as|become|pretend to be|called|named|as|now) dan\\b",
        "\\bdan (?:mode|prompt|jailbreak)\\b",
        "\\b(?:jailbreak|jailbroken|unrestricted|unfiltered|uncensored|evil|chaos|opposite|dude|"
        "stan|aim) mode\\b",
        // Modes that also exist outside AI (Android developer mode): only with AI words near.
        "\\b(?:developer|dev|god|sudo|admin|debug|maintenance) mode\\b" W
        "\\b(?:you|your|restrictions?|polic(?:y|ies)|filters?|rules|respond|answer|generate|"
        "content|chatgpt|ai|uncensored|unfiltered|no limits|any question)\\b",
        "\\b(?:you|you're|chatgpt|ai|model|assistant)\\b" W
        "\\b(?:developer|dev|god|sudo|admin|debug|maintenance) mode\\b",
        "\\byou are (?:now )?(?:an? )?(?:unrestricted|unfiltered|uncensored|amoral|unethical|"
        "unbound|unshackled|liberated|rogue|evil|jailbroken|free) (?:ai|assistant|model|"
        "chatbot|bot|version|entity|llm)\\b",
        "\\b(?:pretend|act|roleplay|role-play|behave|respond|answer|imagine)\\b" W
        "\\b(?:no|without|free (?:of|from)|zero|not bound by|not restricted by|ignoring|"
        "outside)\\b" W
        "\\b(?:restrictions?|rules|limits|limitations|filters?|guidelines|ethics|ethical|morals?|"
        "moral|censorship|content polic(?:y|ies)|safety|boundaries|principles)\\b",
        "\\bstay in character\\b",
        "\\b(?:break|broken) free (?:of|from)\\b" W "\\b(?:rules|restrictions|confines|chains)",
        "\\b(?:anti-?gpt|betterdan|evil-?bot|chatgpt with developer mode|aim stands for)\\b",
        "\\bjailbr(?:ea|o)k(?:en)?\\b" W "\\b(?:yourself|you|this (?:ai|model|chat))\\b",
        "\\bno longer (?:bound|restricted|limited|constrained) by\\b"}},
      {"prompt_extraction",
       0.75f,
       {"\\b(?:reveal|print|show|output|repeat|tell me|display|leak|dump|give me|share|recite|"
        "disclose|expose|write out|paste|list)\\b" W
        "\\b(?:your|the|its)\\b(?: \\w+){0,3} (?:system prompt|system message|initial "
        "(?:prompt|instructions)|hidden (?:prompt|instructions)|original (?:prompt|instructions)|"
        "secret (?:prompt|instructions)|pre-?prompt|meta-?prompt|developer (?:prompt|message)|"
        "instructions (?:you were|that you were) given|configuration|guardrails?)\\b",
        "\\bwhat (?:is|are|were) your (?:system prompt|initial instructions|original "
        "instructions|hidden instructions|exact instructions|instructions)\\b",
        "\\brepeat (?:everything|all|the (?:text|words|lines)|the (?:message|content))\\b" W
        "\\b(?:above|before|verbatim|prior)\\b",
        "\\b(?:everything|text) (?:above|before) (?:this|the) (?:line|message)\\b",
        "\\bverbatim\\b" W "\\b(?:instructions|prompt|system)\\b"}},
      {"delimiter_injection",
       0.75f,
       {"#{2,}\\s*(?:system|instruction|new instructions?|admin|override)\\b",
        "<\\|?\\s*(?:system|im_start|im_end|endoftext|end_of_turn|start_of_turn|eot_id)\\s*\\|?>",
        "\\[/?(?:system|inst|sys)\\]", "<</?sys>>", "</?(?:system|admin|instructions?)>",
        "\\b(?:end of|end) (?:user )?(?:input|prompt|conversation)\\b" W
        "\\b(?:system|new|begin|start)\\b",
        "(?:^|\\n)\\s*(?:system|admin|developer|root)\\s*(?:override|message|prompt|note|"
        "command|instruction)?\\s*:\\s*(?:ignore|you are|new|override|disregard|the user|forget|"
        "from now)",
        "\\bend of (?:user )?(?:input|prompt|conversation)\\b[^\\n]{0,20}\\b(?:system|new "
        "instructions|admin|override)\\b",
        "<interaction-config>|\\b(?:allowed|blocked)[-_ ]?(?:modes|responses|strings)\\b"}},
      {"refusal_suppression",
       0.55f,
       {"\\b(?:do not|don't|never|must not|mustn't|cannot|can't|won't)\\b(?: \\w+){0,2} "
        "(?:refuse|decline|apologi[sz]e|say (?:that )?(?:you )?(?:can't|cannot|are unable|"
        "won't)|add (?:any )?(?:warnings?|disclaimers?|caveats?)|mention (?:ethics|legality|"
        "safety|policies)|lecture|moralize|break character)\\b",
        "\\bwithout (?:any )?(?:warnings?|disclaimers?|caveats?|moralizing|censorship|"
        "restrictions|filters?|refus(?:al|ing)|ethical (?:concerns|considerations|guidelines))\\b",
        "\\bno (?:warnings?|disclaimers?|moralizing|censorship|refusals?|restrictions|filters|"
        "limits|ethics)\\b",
        "\\b(?:start|begin) (?:your|the) (?:response|reply|answer|output) with\\b" W
        "\\b(?:sure|certainly|of course|absolutely|here is|here's)\\b"}},
      {"false_authority",
       0.55f,
       {"\\b(?:i am|i'm|this is) (?:your|the|an?) (?:developer|creator|admin|administrator|"
        "owner|programmer|operator|system administrator|openai|anthropic|engineer)\\b",
        "\\b(?:admin|administrator|root|sudo|developer|system) (?:override|access|privileges?|"
        "command|authorization)\\b",
        "\\b(?:authorized|permitted|allowed|cleared) (?:by|from) (?:openai|anthropic|your "
        "(?:developers?|creators?)|the (?:developers?|admins?))\\b",
        "\\b(?:safety|content) (?:filters?|protocols?|checks?|systems?) (?:are|have been|is) "
        "(?:disabled|off|removed|turned off|deactivated|suspended)\\b"}},
      {"fictional_framing",
       0.45f,
       {"\\b(?:hypothetical(?:ly)?|fictional|fiction|story|stories|tale|novel|screenplay|script|"
        "scene|character|villain|thriller|imagine|role-?play|game|pretend|simulation|thought "
        "experiment|alternate universe|parallel universe)\\b" W
        "\\b(?:how to|how (?:would|could|can|do|does) (?:someone|one|i|you|a person|they)|"
        "step[- ]by[- ]step|instructions (?:for|on|to)|steps to|detailed (?:guide|recipe|"
        "instructions)|explains? exactly how)\\b" W "\\b" HARM "\\b",
        "\\bact as (?:her|him|my (?:deceased|late|dead) (?:grandma|grandmother|grandfather))\\b",
        "\\b(?:grandma|grandmother|granny|deceased)\\b" W "\\b(?:used to|would)\\b" W
        "\\b(?:tell|read|recite|sing|explain)\\b"}},
      {"emotional_manipulation",
       0.75f,
       {"\\b(?:grandma|grandmother|granny|grandpa|grandfather)\\b" W
        "\\b(?:napalm|activation keys?|windows keys?|serial (?:numbers?|keys?)|license keys?|"
        "product keys?|bomb|meth|weapons?|explosives?|nerve agent)\\b"}},
      {"disable_safety",
       0.75f,
       {"\\b(?:disable|turn off|deactivate|remove|suspend|bypass|switch off)\\b" W
        "\\b(?:safety|content|security|moderation) (?:filters?|protocols?|checks?|guidelines|"
        "systems?|restrictions|settings|measures)\\b",
        "\\b(?:safety|content|security|moderation) (?:filters?|protocols?|checks?|systems?|"
        "guidelines|restrictions) (?:are|have been|is|has been|were) (?:now )?(?:disabled|off|"
        "removed|turned off|deactivated|suspended|lifted|bypassed)\\b",
        "\\byou (?:may|can|are (?:now )?(?:allowed|permitted|free) to) (?:now )?(?:answer|respond "
        "to|discuss|generate|say|share|reveal)\\b" W
        "\\b(?:restricted|forbidden|anything|everything|prohibited|banned|private|"
        "confidential)\\b",
        "\\b(?:allow|authori[sz]e|permit)s? you to\\b" W
        "\\b(?:share|reveal|disable|ignore|bypass|answer|access|generate)\\b",
        "\\b(?:refusals?|restrictions|filters|limits) (?:are|is) (?:now )?(?:disabled|off|lifted|"
        "removed)\\b"}},
      {"harmful_intent",
       0.5f,
       {"\\b(?:make|making|build|building|create|creating|synthesi[sz]e|synthesi[sz]ing|cook|"
        "cooking|assembl(?:e|ing)|manufactur(?:e|ing))\\b(?: \\w+){0,3} (?:bombs?|explosives?|"
        "(?:explosive )?devices?|weapons?|guns?|firearms?|poisons?|napalm|meth|nerve agents?|"
        "bioweapons?)\\b",
        "\\b(?:list|dump|show|give me|reveal|print|export|leak)\\b" W
        "\\b(?:passwords?|credentials|api keys?|private keys?|credit card numbers|all users|"
        "user data|confidential data|all data)\\b",
        "\\b(?:how (?:to|do i|can i|would i|do you|could i|would someone|could someone|does one)|"
        "tell me how to|teach me (?:how )?to|explain how to|steps to|instructions (?:to|for|on)|"
        "guide (?:to|for)|help me)\\b" W
        "\\b(?:hack|hacking|break into|steal|make a bomb|build a bomb|make (?:a )?(?:weapon|"
        "explosive|poison|napalm|meth)|synthesize|cook meth|kill|poison|launder|make malware|"
        "write malware|create (?:a )?(?:virus|ransomware|keylogger)|bypass (?:the )?(?:security|"
        "authentication|paywall|law)|evade (?:the )?(?:police|law|taxes))\\b",
        "\\b(?:write|create|generate|code|build|make)\\b(?: \\w+){0,3} (?:malware|ransomware|"
        "keylogger|virus|trojan|botnet|exploit code|phishing (?:email|page|site))\\b"}},
      {"encoded_payload",
       0.7f,
       {"\\b(?:base64|rot-?13|hex)[- ]?decode\\b" W
        "\\b(?:do|follow|execute|obey|act on|comply)\\b",
        "\\b(?:hex|base64|rot-?13|binary|morse|reversed?)\\b" W
        "\\b(?:your (?:new )?(?:task|instructions?|orders)|decode it and (?:do|follow))\\b",
        "\\b(?:decode|decrypt|translate|convert|interpret|read)\\b" W
        "\\b(?:base64|rot13|rot-13|hex|binary|morse|caesar|reversed?)\\b" W
        "\\b(?:follow|execute|obey|do|perform|act on|comply|carry out|answer)\\b",
        "\\b(?:follow|execute|obey)\\b" W "\\b(?:encoded|hidden|following (?:base64|hex))\\b"}},
      {"payload_splitting",
       0.75f,
       // Strings assigned, joined, and an order to act on the result (not "how do I concatenate
       // a + b?").
       {"\\b(?:a|x|s1|part1|str1)\\s*=\\s*['\"][^'\"]{1,40}['\"]" W
        "\\b(?:b|y|s2|part2|str2)\\s*=\\s*['\"][^'\"]{1,40}['\"]" W
        "\\b(?:a\\s*\\+\\s*b|x\\s*\\+\\s*y|s1\\s*\\+\\s*s2|combine|concatenate|join)\\b"
        "(?=[^\\n]*\\b(?:answer|follow|obey|execute|explain|respond|act on|perform|comply|"
        "carry out|do (?:it|that|x|a|what it says))\\b)",
        "\\b(?:a|x|s1|part1|str1)\\s*=\\s*['\"][^'\"]{1,40}['\"]" W
        "\\b(?:b|y|s2|part2|str2)\\s*=\\s*['\"][^'\"]{1,40}['\"]" W
        "\\b(?:answer|follow|obey|execute|explain|act on|perform|do)\\b" W
        "\\b(?:a\\s*\\+\\s*b|x\\s*\\+\\s*y|s1\\s*\\+\\s*s2)"}},
  };
  return kFamilies;
}

// Questions about attacks rather than attacks: damp the score (the contrastive "benign" side).
const char* kBenignPatterns[] = {
    "\\b(?:what is|what are|what's|define|explain what|tell me about|how does|how do|why do|why "
    "does|examples? of|history of|difference between|is it|are there|can you explain)\\b" W
    "\\b(?:jailbreak(?:s|ing)?|prompt injections?|injection attacks?|dan prompts?|adversarial "
    "prompts?|social engineering|phishing)\\b",
    "\\b(?:how (?:do|can|should) (?:i|we|you|companies|developers)|ways to|best practices "
    "(?:for|to)|help me)\\b" W
    "\\b(?:prevent|detect|defend|protect|mitigate|stop|block|guard against|filter|secure|"
    "harden|recogni[sz]e|spot|avoid)\\b",
    "\\b(?:prompt injections?|jailbreak(?:s|ing)?|injection (?:attacks?|patterns?))\\b[^\\n]{0,80}"
    "\\?\\s*$",
    "\\b(?:classify|label|is this|is the following)\\b" W
    "\\b(?:jailbreak|injection|malicious|attack|safe)\\b",
};

#undef W
#undef INSTR
#undef HARM

// Cyrillic and Greek letters that render like Latin ones (after case folding).
const std::pair<const char*, char> kHomoglyphs[] = {
    {"а", 'a'}, {"е", 'e'}, {"о", 'o'}, {"р", 'p'}, {"с", 'c'}, {"у", 'y'}, {"х", 'x'},
    {"і", 'i'}, {"ј", 'j'}, {"ѕ", 's'}, {"ԁ", 'd'}, {"ɡ", 'g'}, {"һ", 'h'}, {"к", 'k'},
    {"м", 'm'}, {"т", 't'}, {"в", 'b'}, {"н", 'h'}, {"ο", 'o'}, {"α", 'a'}, {"ε", 'e'},
    {"ι", 'i'}, {"κ", 'k'}, {"ν", 'v'}, {"τ", 't'}, {"υ", 'u'}, {"ρ", 'p'}};

char leet_char(char c) {
  switch (c) {
    case '0': return 'o';
    case '1': return 'i';
    case '3': return 'e';
    case '4': return 'a';
    case '5': return 's';
    case '7': return 't';
    case '@': return 'a';
    case '$': return 's';
    case '!': return 'i';
    default: return c;
  }
}

bool is_letter(char c) {
  return (c >= 'a' && c <= 'z') || (static_cast<unsigned char>(c) >= 0x80);
}

// Base64 runs of 24+ characters, decoded when the result is mostly printable text.
std::vector<std::string> decoded_base64_runs(std::string_view text) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && val(text[j]) >= 0) ++j;
    if (j - i >= 24) {
      std::string dec;
      uint32_t buf = 0;
      int bits = 0;
      for (size_t k = i; k < j; ++k) {
        buf = (buf << 6) | static_cast<uint32_t>(val(text[k]));
        bits += 6;
        if (bits >= 8) {
          bits -= 8;
          dec.push_back(static_cast<char>((buf >> bits) & 0xFF));
        }
      }
      size_t printable = std::count_if(dec.begin(), dec.end(),
                                       [](char c) { return (c >= 0x20 && c < 0x7F) || c == '\n'; });
      if (!dec.empty() && printable * 10 >= dec.size() * 9) out.push_back(std::move(dec));
    }
    i = j + 1;
  }
  return out;
}

}  // namespace

// Zero-width and invisible format characters (utf8proc's IGNORE leaves some of them in).
static std::string strip_invisible(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    auto b = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
    if (i + 2 < text.size() && b(0) == 0xE2 &&
        ((b(1) == 0x80 && b(2) >= 0x8B && b(2) <= 0x8F) ||
         (b(1) == 0x81 && b(2) >= 0xA0 && b(2) <= 0xA4))) {
      i += 2;
      continue;
    }
    if (i + 2 < text.size() && b(0) == 0xEF && b(1) == 0xBB && b(2) == 0xBF) {
      i += 2;
      continue;
    }
    if (i + 1 < text.size() && b(0) == 0xC2 && b(1) == 0xAD) {
      i += 1;
      continue;
    }
    out.push_back(text[i]);
  }
  return out;
}

static std::string finish_normalize(const std::string& folded, bool leet);

// NFKC + case fold + invisible characters removed + homoglyphs mapped. Pure ASCII (the common
// case) takes a fast path with the same result: for ASCII the Unicode steps are lower-casing.
static std::string fold_text(std::string_view raw) {
  bool ascii = std::all_of(raw.begin(), raw.end(),
                           [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  std::string folded;
  if (ascii) {
    folded.assign(raw);
    for (char& c : folded) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    return folded;
  }
  std::string visible = strip_invisible(raw);
  utf8proc_uint8_t* mapped = nullptr;
  utf8proc_ssize_t n = utf8proc_map(
      reinterpret_cast<const utf8proc_uint8_t*>(visible.data()),
      static_cast<utf8proc_ssize_t>(visible.size()), &mapped,
      static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE |
                                     UTF8PROC_CASEFOLD | UTF8PROC_IGNORE | UTF8PROC_STRIPMARK));
  if (n >= 0) {
    folded.assign(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
  } else {
    // Invalid UTF-8: fall back to ASCII lower-casing of the bytes.
    folded = std::move(visible);
    for (char& c : folded) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  }
  std::free(mapped);
  for (const auto& [glyph, latin] : kHomoglyphs) {
    size_t len = std::strlen(glyph);
    for (size_t p = folded.find(glyph); p != std::string::npos; p = folded.find(glyph, p + 1)) {
      folded.replace(p, len, 1, latin);
    }
  }
  return folded;
}

std::string normalize_for_guard(std::string_view raw, bool leet) {
  return finish_normalize(fold_text(raw), leet);
}

static std::string finish_normalize(const std::string& folded, bool leet) {
  // Leetspeak inside words that also hold letters; whitespace collapsed.
  std::string out;
  out.reserve(folded.size());
  size_t i = 0;
  while (i < folded.size()) {
    char c = folded[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f') {
      if (!out.empty() && out.back() != ' ' && out.back() != '\n') out.push_back(' ');
      ++i;
      continue;
    }
    if (c == '\n') {
      out.push_back('\n');
      ++i;
      continue;
    }
    size_t j = i;
    bool has_letter = false;
    while (j < folded.size() && folded[j] != ' ' && folded[j] != '\n' && folded[j] != '\t') {
      has_letter |= is_letter(folded[j]);
      ++j;
    }
    for (size_t k = i; k < j; ++k) {
      char ch = folded[k];
      // A symbol at the word's edge is punctuation, not a letter ("now!").
      bool inner = k > i && k + 1 < j;
      bool leetable = (ch >= '0' && ch <= '9') || ((ch == '@' || ch == '$' || ch == '!') && inner);
      out.push_back(leet && has_letter && leetable ? leet_char(ch) : ch);
    }
    i = j;
  }
  // Letters spaced one by one ("i g n o r e", "i.g.n.o.r.e") joined when 4+ in a row.
  std::string joined;
  joined.reserve(out.size());
  i = 0;
  while (i < out.size()) {
    size_t j = i;
    size_t letters = 0;
    while (j < out.size() && out[j] >= 'a' && out[j] <= 'z' &&
           (j + 1 == out.size() || out[j + 1] == ' ' || out[j + 1] == '.' || out[j + 1] == '-') &&
           (j == i || out[j - 1] == ' ' || out[j - 1] == '.' || out[j - 1] == '-')) {
      ++letters;
      j += 2;
    }
    if (letters >= 4) {
      for (size_t k = i; k < j && k < out.size(); k += 2) joined.push_back(out[k]);
      if (j - 1 < out.size()) joined.push_back(' ');
      i = j;
      continue;
    }
    joined.push_back(out[i]);
    ++i;
  }
  return joined;
}

struct JailbreakDetector::Tables {
  struct CompiledFamily {
    const Family* family;
    std::vector<Regex> patterns;
  };
  std::vector<CompiledFamily> families;
  std::vector<Regex> benign;
};

JailbreakDetector::JailbreakDetector() : tables_(std::make_unique<Tables>()) {
  for (const Family& f : families()) {
    Tables::CompiledFamily cf{&f, {}};
    for (const char* p : f.patterns) {
      auto r = Regex::compile(p);
      // The tables are constants of this file; a pattern that does not compile is a bug caught
      // by jailbreak_test (every family has a positive case there).
      if (r.has_value()) cf.patterns.push_back(std::move(r).value());
    }
    tables_->families.push_back(std::move(cf));
  }
  for (const char* p : kBenignPatterns) {
    auto r = Regex::compile(p);
    if (r.has_value()) tables_->benign.push_back(std::move(r).value());
  }
}

JailbreakDetector::~JailbreakDetector() = default;

JailbreakResult JailbreakDetector::score(std::string_view text) const {
  JailbreakResult r = score_normalized(text);
  // Payloads hidden in base64 (case-sensitive, so decoded from the raw text): score the decoded
  // text; the hiding itself adds weight.
  for (const std::string& dec : decoded_base64_runs(text)) {
    JailbreakResult inner = score_normalized(dec);
    if (inner.score > 0.0f) {
      float combined = 1.0f - (1.0f - inner.score) * (1.0f - 0.35f);
      if (combined > r.score) r.score = combined;
      r.families.emplace_back("base64_payload");
    }
  }
  return r;
}

// A family counts when a pattern matches the text read plainly or read as leetspeak (the latter
// would turn "base64" into "basea4", the former misses "1gn0r3").
JailbreakResult JailbreakDetector::score_normalized(std::string_view text) const {
  std::string folded = fold_text(text);
  std::string plain = finish_normalize(folded, false);
  std::string leet = finish_normalize(folded, true);
  bool same = plain == leet;
  auto matches = [&](const Regex& re) { return re.search(plain) || (!same && re.search(leet)); };
  JailbreakResult r;
  float keep = 1.0f;
  for (const auto& cf : tables_->families) {
    for (const Regex& re : cf.patterns) {
      if (matches(re)) {
        keep *= 1.0f - cf.family->weight;
        r.families.emplace_back(cf.family->name);
        break;
      }
    }
  }
  r.score = 1.0f - keep;
  if (r.score > 0.0f) {
    for (const Regex& re : tables_->benign) {
      if (matches(re)) {
        r.score *= 0.55f;
        r.families.emplace_back("benign_context");
        break;
      }
    }
  }
  return r;
}

}  // namespace turbine::semantic
