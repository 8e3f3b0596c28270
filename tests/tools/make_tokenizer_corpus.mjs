// Deterministic tokenizer test corpus: seed pieces (many scripts, code, whitespace, digits,
// special-token text, odd Unicode) plus random combinations and slices of them.
//
// usage: node make_tokenizer_corpus.mjs [COUNT=2400] [SEED=1234] > corpus.jsonl
// One JSON string per line. Characters are limited to Unicode 14 where it matters (PCRE2 10.42's
// tables) and never include lone surrogates (they cannot be UTF-8).
const count = Number(process.argv[2] ?? 2400);
let state = Number(process.argv[3] ?? 1234) >>> 0;

// mulberry32: small, fast, and the same on every platform.
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(random() * list.length)];
const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));

const seeds = [
  // English, contractions in all cases
  "Hello world", "Hello, world!", "The quick brown fox jumps over the lazy dog.",
  "I'm sure you've seen what they'll do; he's here, we're there, I'd go.",
  "DON'T SHOUT, IT'S RUDE. YOU'VE BEEN WARNED, WE'LL SEE, I'M OUT, HE'D KNOW",
  "rock'n'roll o'clock 'quoted' \"double\" `back`", "isn’t it — “smart quotes” … ‘yes’",
  "e.g. i.e. etc. Mr. Smith vs. Dr. Jones", "  leading spaces", "trailing spaces   ",
  // European languages
  "Ça va? Où est la bibliothèque? Élève, naïve, cœur, façade.", "Grüße aus München! Straße, Fußgänger, ÄÖÜ äöü ß",
  "¿Dónde está el baño? ¡Olé! año, niño, pingüino", "Zażółć gęślą jaźń. Łódź, Kraków", "Příliš žluťoučký kůň úpěl ďábelské ódy",
  "Árvíztűrő tükörfúrógép", "İstanbul'da ılık bir gün; Iğdır, şehir, çocuk", "Ελληνικά: Καλημέρα κόσμε, ΑΒΓΔ αβγδ ς",
  "Русский текст: Съешь же ещё этих мягких французских булок, да выпей чаю.", "Українська: Їжак ґава є", "Ӂ Ԧ ԥ",
  // CJK, Korean, Japanese
  "中文测试：你好，世界！今天天气很好。", "繁體中文：這是一個測試。", "日本語のテキスト：こんにちは、世界。カタカナ、ひらがな、漢字。",
  "한국어 텍스트: 안녕하세요 세계! 한글은 아름답습니다.", "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ ！？", "半角ｶﾀｶﾅ ﾃｽﾄ", "𠀀𠀁𠀂 𪚥 𩸽",
  // RTL and Indic
  "العربية: مرحبا بالعالم! كيف حالك؟ ١٢٣٤٥", "עברית: שלום עולם", "فارسی: سلام دنیا ۱۲۳",
  "हिन्दी: नमस्ते दुनिया। क्षत्रिय, ज्ञान", "বাংলা: হ্যালো বিশ্ব", "தமிழ்: வணக்கம் உலகம்", "ไทย: สวัสดีชาวโลก", "ქართული ენა", "Հայերեն", "አማርኛ ቋንቋ",
  "Tiếng Việt: Xin chào thế giới, ở đâu, người", "ᚠᚢᚦᚨᚱᚲ runes", "ꦗꦮ Javanese",
  // emoji
  "I love 🍕 and 🍣!", "👨‍👩‍👧‍👦 family", "👩🏽‍💻 coder", "🏳️‍🌈 flag", "🇺🇸🇯🇵🇩🇪", "❤️ ❤ ♥️", "😀😃😄😁😆😅😂🤣",
  "1️⃣ 2️⃣ #️⃣", "🫠🫡🫥", "✌🏿👍🏻",
  // code
  "def foo(x):\n    return x ** 2  # square\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }",
  "#include <stdio.h>\nint main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
  "const f = async (a, b) => { await g(a?.b ?? null); };", "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
  "<html><body><div class=\"x\">Hi &amp; bye</div></body></html>", "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\"}}",
  "fn main() -> Result<(), Box<dyn Error>> { println!(\"{:?}\", v); Ok(()) }", "$ ls -la | grep '^d' && echo \"done\" >> log.txt 2>&1",
  "x += y->z; p = &q; r = *s; t = a << 2 >> 1; u = !v || w && x;", "    if x:\n        pass\n    else:\n        raise ValueError('bad')\n",
  "https://example.com/path?query=1&b=2#frag", "user@example.org", "C:\\Windows\\System32\\drivers\\etc\\hosts",
  "camelCaseIdentifier snake_case_name SCREAMING_CASE kebab-case __dunder__",
  // whitespace
  " ", "  ", "\t", "\n", "\n\n\n", "\r\n", "\r\n\r\n", "a\r\nb", "a\n\n\nb", "  \n  \n", "\t\t\tx", "word          word",
  " ".repeat(40), "\n".repeat(20), "x" + " ".repeat(17) + "y", " \t \n \r \f \v ", "a\u00a0b\u00a0\u00a0c", "a\u2003b\u2009c\u202fd\u3000e",
  "a\u2028b\u2029c", "line\u0085next", "\ufeffBOM at start", "mid\ufeffdle", "zero\u200bwidth\u200cnon\u200djoiner",
  // digits
  "0", "1", "12", "123", "1234", "12345", "123456789012345678901234567890", "3.14159265358979", "1,000,000.00", "-42", "+7e-10",
  "2024-01-15T10:30:00Z", "phone: +1 (555) 123-4567", "v1.2.3-rc.4", "0x1F 0b1010 0o777", "١٢٣ ۴۵۶ ४५६ ๑๒๓ ⅣⅫ ½ ¾ ² ³", "٣.١٤",
  // special-token text
  "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
  "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n", "<|im_end|>", "<|endoftext|>",
  "<s>", "</s>", "<unk>", "<s>[INST] Hi [/INST]", "text<|endoftext|>more", "<|im_start|><|im_start|>", "< |im_start| >",
  "<|im_start", "im_start|>", "<think>\nreasoning\n</think>\n\nanswer", "<tool_call>\n{\"name\": \"f\"}\n</tool_call>",
  "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>", "<|reserved_special_token_5|>", "<|vision_start|><|image_pad|><|vision_end|>",
  "<0x0A>", "▁hello ▁▁world", "ĠĊ Ġthe", "</s><s>",
  // odd Unicode
  "e\u0301 vs \u00e9", "A\u030a \u212b \u00c5", "\u1100\u1161\u11a8 composed", "n\u0303o\u0308", "\uf900\uf901 compat", "ﬁ ﬂ ﬀ ligatures",
  "𝐀𝐁𝐂 𝕏 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "Ⅻ ⅻ ℃ ℉ № ™ ©", "K\u212a s\u017f 'ſ '\u212a 'K", "\u0130 \u0131 \u00df \u1e9e", "ǅ ǈ ǋ titlecase",
  "\u0000\u0001\u0007\u001b[31mred\u001b[0m", "\u007f\u0080\u009f", "\ue000\uf8ff private", "\u{10ffff}\u{f0000}", "\uffff\ufffe",
  "\ufffd replacement", "\u0378 unassigned", "\u202eRTL override\u202c", "\u200f\u200e marks", "a\u0308\u0308\u0308\u0308 stacked",
  "Z̴̡̧͇̈́a̷̗̓l̶̰̎g̸̣͌ö̵̧́", "\u{1f3fb}", "\ufe0f\ufe0e", "\u{e0067}\u{e0062} tags", "ᄀ ᅡ ᆨ jamo", "가각갂", "\u3164 filler",
  "a\u00adb soft hyphen", "\u2060word joiner", "ⓐⓑⓒ ①②③", "÷×±∞≠≤≥√∑∏∫", "€£¥₹₽₿$¢", "←↑→↓↔ ⇒ ⇔", "♠♣♥♦ ♪♫",
];

const joins = ["", " ", "  ", "\n", "\n\n", "\t", ", ", ". ", " - ", "\r\n"];
const codePointRanges = [
  [0x20, 0x7e], [0xa0, 0x24f], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x6ff], [0x900, 0x97f],
  [0xe00, 0xe7f], [0x1100, 0x11ff], [0x2000, 0x206f], [0x3000, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3],
  [0xf900, 0xfaff], [0xff00, 0xffef], [0x1f300, 0x1f5ff], [0x1d400, 0x1d7ff], [0x0, 0x1f],
];
const randomChars = (n) => {
  let s = "";
  for (let i = 0; i < n; ++i) {
    const [lo, hi] = pick(codePointRanges);
    s += String.fromCodePoint(int(lo, hi));
  }
  return s;
};
const slice = (s) => {
  const cps = Array.from(s);
  const a = int(0, cps.length);
  const b = int(a, cps.length);
  return cps.slice(a, b).join("");
};

const out = [...seeds];
while (out.length < count) {
  const r = random();
  let s;
  if (r < 0.55) {
    const n = int(2, 6);
    const parts = [];
    for (let i = 0; i < n; ++i) parts.push(pick(seeds));
    s = parts.map((p, i) => (i === 0 ? p : pick(joins) + p)).join("");
  } else if (r < 0.7) {
    s = slice(pick(seeds) + pick(joins) + pick(seeds));
  } else if (r < 0.85) {
    s = randomChars(int(1, 24));
  } else {
    s = pick(seeds) + pick(joins) + randomChars(int(1, 8)) + pick(joins) + pick(seeds);
  }
  if (s.length === 0) continue;
  out.push(s);
}
process.stdout.write(out.map((s) => JSON.stringify(s)).join("\n") + "\n");
