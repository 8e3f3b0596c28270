// Deterministic mixed text corpus for the tokenizer benchmark (issue 3), about 4 MB by default.
//
// usage: node bench/make_tokenizer_bench_corpus.mjs OUT.txt [SIZE_BYTES=4000000] [SEED=7]
//
// Plain UTF-8 text, one paragraph or snippet per line group, mixed like chat/completion traffic:
//   ~60% English prose (Zipf-distributed words, so the BPE word cache sees a realistic mix of
//        frequent and rare words), ~15% source code (C++, Python, JSON), ~12% other languages
//        and scripts (European, Cyrillic, CJK, Arabic, Hindi, emoji), ~8% numbers, dates, URLs,
//        ~5% markdown and chat-style text with special-token look-alikes.
// The same arguments always give the same bytes.
import { writeFileSync } from 'node:fs';

const [outPath, sizeArg, seedArg] = process.argv.slice(2);
if (!outPath) {
  console.error('usage: node make_tokenizer_bench_corpus.mjs OUT.txt [SIZE_BYTES=4000000] [SEED=7]');
  process.exit(2);
}
const targetBytes = Number(sizeArg ?? 4_000_000);
let state = Number(seedArg ?? 7) >>> 0;

// mulberry32, as tests/tools/make_tokenizer_corpus.mjs.
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(random() * list.length)];
const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));

const common = (
  'the of and to a in is that for it as was with be by on not he I this are or his from at which ' +
  'but have an they you were her she there one all we their has been would will if more when can ' +
  'what so no out said up who about them into time some could my than first other its new only ' +
  'people also two over like how after may most made our years where through well because down ' +
  'should work world year just state between life both under never day same another know while ' +
  'last might us great old still house public own such system government number program group ' +
  'water country problem fact company question model memory token server request cache engine ' +
  'language training inference batch latency throughput attention layer vector matrix kernel'
).split(' ');
const syllables = ['ka', 'ro', 'mi', 'tion', 'ing', 'er', 'st', 'pre', 'con', 'al', 'ly', 'ex',
  'ment', 'ous', 'ble', 'th', 'qu', 'ph', 'an', 'ic', 'ize', 'ward', 'ness', 'un', 're', 'dis'];
// Rare words: built from syllables, then fixed, so each appears again with Zipf frequency.
const rare = Array.from({ length: 20000 }, () => {
  let w = '';
  for (let n = int(2, 5); n > 0; --n) w += pick(syllables);
  return w;
});
const vocabulary = [...common, ...rare];
// Zipf(s=1.05) over the vocabulary by inverse-CDF on precomputed weights.
const cdf = [];
{
  let acc = 0;
  for (let r = 1; r <= vocabulary.length; ++r) cdf.push((acc += 1 / Math.pow(r, 1.05)));
  for (let i = 0; i < cdf.length; ++i) cdf[i] /= acc;
}
function zipfWord() {
  const u = random();
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return vocabulary[lo];
}

function sentence() {
  const words = [];
  for (let n = int(5, 28); n > 0; --n) {
    let w = zipfWord();
    if (random() < 0.04) w = w[0].toUpperCase() + w.slice(1);
    if (random() < 0.03) w += pick(["'s", "n't", "'ll", "'re", "'ve"]);
    words.push(w);
    if (random() < 0.07) words[words.length - 1] += pick([',', ';', ':', ' —', ' (see above)']);
  }
  const s = words.join(' ');
  return s[0].toUpperCase() + s.slice(1) + pick(['.', '.', '.', '?', '!', '...']);
}
const prose = () => Array.from({ length: int(2, 9) }, sentence).join(' ') + '\n\n';

const ident = () => pick(['x', 'i', 'n', 'buf', 'size', 'count', 'tokens', 'block_table', 'kv_cache',
  'request', 'result', 'status', 'logits', 'max_len', 'seq', 'hidden_states']);
function cpp() {
  const name = ident();
  return `// Returns the ${zipfWord()} of ${zipfWord()} (${zipfWord()}).\n` +
    `Result<std::vector<int32_t>> ${name}_${ident()}(std::span<const float> ${ident()}, int ${ident()}) {\n` +
    `  std::vector<int32_t> out;\n  out.reserve(${int(1, 4096)});\n` +
    `  for (size_t i = 0; i < ${ident()}.size(); ++i) {\n` +
    `    if (${ident()}[i] > ${(random() * 10).toFixed(3)}f) out.push_back(static_cast<int32_t>(i));\n` +
    `  }\n  if (out.empty()) return invalid_argument("no ${zipfWord()} found", "${name}");\n` +
    `  return out;\n}\n\n`;
}
function python() {
  return `def ${ident()}_${ident()}(${ident()}, ${ident()}=None, *, ${ident()}=${int(0, 512)}):\n` +
    `    """${sentence()}"""\n    total = 0\n    for ${ident()} in range(${int(1, 100)}):\n` +
    `        if ${ident()} % ${int(2, 9)} == 0:\n            total += ${ident()} ** 2  # ${zipfWord()}\n` +
    `    return {"${ident()}": total, "ok": True, "ratio": ${random().toFixed(4)}}\n\n`;
}
function jsonDoc() {
  const obj = {
    model: pick(['llama-3.1-8b', 'qwen3-4b', 'gpt2']), messages: [
      { role: 'system', content: sentence() }, { role: 'user', content: sentence() }],
    temperature: Number(random().toFixed(2)), max_tokens: int(1, 2048), stream: random() < 0.5,
    tools: [{ type: 'function', function: { name: `${ident()}_${ident()}`, parameters: { type: 'object', properties: { [ident()]: { type: 'string' } } } } }],
  };
  return JSON.stringify(obj, null, random() < 0.5 ? 2 : 0) + '\n\n';
}
const code = () => pick([cpp, python, jsonDoc])();

const languages = [
  'Ça va? Où est la bibliothèque? Élève, naïve, cœur, façade. Nous étions déjà là-bas hier soir.',
  'Grüße aus München! Die Straße ist heute voller Fußgänger, und die Bäckerei öffnet um sieben.',
  '¿Dónde está el baño? ¡Olé! El niño comió pingüinos de chocolate durante el año nuevo.',
  'Zażółć gęślą jaźń. W Łodzi i w Krakowie pada deszcz, ale jutro będzie słonecznie.',
  'Съешь же ещё этих мягких французских булок, да выпей чаю. Москва, Санкт-Петербург, Новосибирск.',
  'Ελληνικά: Καλημέρα κόσμε, πώς είσαι σήμερα; Η θάλασσα είναι γαλάζια.',
  '今天天气很好，我们去公园散步吧。机器学习模型需要大量的数据和计算资源。',
  '日本語のテキスト：こんにちは、世界。東京は今日も晴れています。カタカナ、ひらがな、漢字。',
  '한국어 텍스트: 안녕하세요 세계! 오늘 날씨가 정말 좋네요. 한글은 아름답습니다.',
  'العربية: مرحبا بالعالم! كيف حالك اليوم؟ الطقس جميل في القاهرة.',
  'हिन्दी: नमस्ते दुनिया। आज मौसम बहुत अच्छा है, चलो बाहर चलते हैं।',
  'Tiếng Việt: Xin chào thế giới, hôm nay trời đẹp quá, chúng ta đi chơi nhé.',
  'ไทย: สวัสดีชาวโลก วันนี้อากาศดีมาก', 'עברית: שלום עולם, מה שלומך היום?',
  'Emoji 😀🎉👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️‍🔥 ✨🚀 and text around them 🙂',
];
const multilingual = () => Array.from({ length: int(1, 4) }, () => pick(languages)).join(' ') + '\n\n';

function numbers() {
  const parts = [];
  for (let n = int(3, 10); n > 0; --n) {
    parts.push(pick([
      () => String(int(0, 1e9)), () => (random() * 1e6).toFixed(int(0, 6)),
      () => `${int(1990, 2030)}-${String(int(1, 12)).padStart(2, '0')}-${String(int(1, 28)).padStart(2, '0')}T${String(int(0, 23)).padStart(2, '0')}:${String(int(0, 59)).padStart(2, '0')}:00Z`,
      () => `https://example.com/${ident()}/${int(1, 99999)}?q=${zipfWord()}&page=${int(1, 50)}`,
      () => `${int(0, 255)}.${int(0, 255)}.${int(0, 255)}.${int(0, 255)}:${int(1024, 65535)}`,
      () => `0x${int(0, 0xffffff).toString(16).padStart(8, '0')}`, () => `$${(random() * 1000).toFixed(2)}`,
      () => `+1 (${int(200, 999)}) ${int(200, 999)}-${String(int(0, 9999)).padStart(4, '0')}`,
    ])());
  }
  return parts.join(pick([' ', ', ', '\t', ' | '])) + '\n';
}

function markdown() {
  return `## ${sentence()}\n\n- **${zipfWord()}**: ${sentence()}\n- \`${ident()}\` — ${sentence()}\n\n` +
    `| ${zipfWord()} | ${zipfWord()} |\n|---|---|\n| ${int(0, 99)} | ${random().toFixed(3)} |\n\n` +
    `<|im_start|>user\n${sentence()}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n${sentence()}<|im_end|>\n\n`;
}

const kinds = [[0.60, prose], [0.75, code], [0.87, multilingual], [0.95, numbers], [1.0, markdown]];
const pieces = [];
let bytes = 0;
while (bytes < targetBytes) {
  const u = random();
  const piece = kinds.find(([p]) => u < p)[1]();
  pieces.push(piece);
  bytes += Buffer.byteLength(piece, 'utf8');
}
writeFileSync(outPath, pieces.join(''));
console.error(`wrote ${outPath}: ${bytes} bytes`);
