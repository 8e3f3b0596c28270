// A strict parser of the Prometheus text exposition format (0.0.4), for every /metrics scrape in
// the tests: a malformed line, a sample without its `# TYPE`, a family declared twice, a
// histogram whose buckets do not add up, or a `*_total` name that is not a counter throws, so a
// type error in what Turbine exports cannot pass a test that only reads one value.
//
// parsePrometheus(text) -> { families: Map(name -> {type, help}), samples: [{name, labels, value}] }
// scrape(url) fetches and parses; value(parsed, name, labels) sums the matching samples.

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(s, line) {
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s.toLowerCase() === 'nan') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`bad value in: ${line}`);
  return Number(s);
}

// `{a="x",b="y\"z"}` -> {a: 'x', b: 'y"z'}
function parseLabels(src, line) {
  const labels = {};
  let i = 0;
  while (i < src.length) {
    const eq = src.indexOf('=', i);
    if (eq < 0) throw new Error(`bad labels in: ${line}`);
    const key = src.slice(i, eq);
    if (!LABEL.test(key)) throw new Error(`bad label name "${key}" in: ${line}`);
    if (key in labels) throw new Error(`duplicate label "${key}" in: ${line}`);
    if (src[eq + 1] !== '"') throw new Error(`unquoted label value in: ${line}`);
    let j = eq + 2;
    let value = '';
    for (; j < src.length && src[j] !== '"'; ++j) {
      if (src[j] === '\\') {
        const n = src[++j];
        if (n === 'n') value += '\n';
        else if (n === '\\' || n === '"') value += n;
        else throw new Error(`bad escape in: ${line}`);
      } else {
        value += src[j];
      }
    }
    if (j >= src.length) throw new Error(`unterminated label value in: ${line}`);
    labels[key] = value;
    i = j + 1;
    if (i < src.length) {
      if (src[i] !== ',') throw new Error(`expected "," between labels in: ${line}`);
      ++i;
    }
  }
  return labels;
}

// The family a sample belongs to: histogram and summary series carry suffixes.
function familyOf(name, families) {
  if (families.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const f = families.get(base);
      if (f && (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket'))) return base;
    }
  }
  return null;
}

export function parsePrometheus(text) {
  const families = new Map();
  const samples = [];
  const seen = new Set();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = line.match(/^# (HELP|TYPE) (\S+)(?: (.*))?$/);
      if (!m) continue;  // a plain comment
      const [, kind, name, rest = ''] = m;
      if (!NAME.test(name)) throw new Error(`bad metric name in: ${line}`);
      const f = families.get(name) ?? { type: undefined, help: undefined, samples: 0 };
      if (kind === 'TYPE') {
        if (f.type !== undefined) throw new Error(`# TYPE ${name} declared twice`);
        if (!TYPES.has(rest)) throw new Error(`unknown type in: ${line}`);
        if (f.samples > 0) throw new Error(`# TYPE ${name} after its samples`);
        // A `_total` name is a counter (Prometheus naming; what a type error looks like).
        if (name.endsWith('_total') && rest !== 'counter') {
          throw new Error(`${name} is declared ${rest}: a *_total metric must be a counter`);
        }
        f.type = rest;
      } else {
        if (f.help !== undefined) throw new Error(`# HELP ${name} declared twice`);
        f.help = rest;
      }
      families.set(name, f);
      continue;
    }
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/);
    if (!m) throw new Error(`malformed sample line: ${line}`);
    const [, name, labelSrc, valueSrc] = m;
    const labels = labelSrc ? parseLabels(labelSrc, line) : {};
    const value = parseValue(valueSrc, line);
    const family = familyOf(name, families);
    if (family === null || families.get(family).type === undefined) {
      throw new Error(`sample ${name} has no # TYPE`);
    }
    const f = families.get(family);
    f.samples++;
    if (f.type === 'counter' && !(value >= 0)) throw new Error(`counter ${name} is ${value}`);
    const key = name + JSON.stringify(Object.entries(labels).sort());
    if (seen.has(key)) throw new Error(`duplicate series: ${line}`);
    seen.add(key);
    samples.push({ name, family, labels, value });
  }
  checkHistograms(families, samples);
  return { families, samples };
}

// Each histogram series: buckets cumulative, a +Inf bucket equal to _count.
function checkHistograms(families, samples) {
  const series = new Map();
  for (const s of samples) {
    if (families.get(s.family)?.type !== 'histogram') continue;
    const { le, ...rest } = s.labels;
    const key = s.family + JSON.stringify(Object.entries(rest).sort());
    const h = series.get(key) ?? { buckets: [], count: undefined };
    if (s.name.endsWith('_bucket')) {
      if (le === undefined) throw new Error(`${s.name} without le`);
      h.buckets.push([parseValue(le, s.name), s.value]);
    } else if (s.name.endsWith('_count')) {
      h.count = s.value;
    }
    series.set(key, h);
  }
  for (const [key, h] of series) {
    h.buckets.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < h.buckets.length; ++i) {
      if (h.buckets[i][1] < h.buckets[i - 1][1]) throw new Error(`${key}: buckets are not cumulative`);
    }
    const inf = h.buckets.at(-1);
    if (!inf || inf[0] !== Infinity) throw new Error(`${key}: no +Inf bucket`);
    if (h.count !== undefined && inf[1] !== h.count) throw new Error(`${key}: +Inf bucket != _count`);
  }
}

// The text of a scrape, after parsePrometheus accepted it.
export async function scrapeText(url, init = {}) {
  const r = await fetch(url, init);
  if (r.status !== 200) throw new Error(`${url}: ${r.status}`);
  const text = await r.text();
  parsePrometheus(text);
  return text;
}

export async function scrape(url, init = {}) {
  const r = await fetch(url, init);
  if (r.status !== 200) throw new Error(`${url}: ${r.status}`);
  return parsePrometheus(await r.text());
}

// Sum of the samples named `name` whose labels include `labels`.
export function value(parsed, name, labels = {}) {
  return parsed.samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}
