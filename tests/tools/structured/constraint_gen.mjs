// Seeded generators of constraints for structured-output tests: JSON Schemas that cover every
// keyword turbine supports (validated with ajv), regexes (validated with JavaScript's RegExp,
// full match, 'u' flag) and choice lists. Pure JavaScript, no dependencies, deterministic for a
// seed: the walk property test (tests/e2e/structured_walk.test.mjs) and the end-to-end test with
// the model both draw from here.
//
//   import { generateSchemas, generateRegexes, generateChoices, SCHEMA_KEYWORDS,
//            schemaKeywords } from '../tools/structured/constraint_gen.mjs';
//   generateSchemas(seed, 200) -> [schema object, ...]
//   generateRegexes(seed, 100) -> [pattern string, ...]   (match with new RegExp(`^(?:${p})$`, 'u'))
//   generateChoices(seed, 20)  -> [[string, ...], ...]

// Every keyword the schemas exercise; generateSchemas(seed, n >= 60) covers all of them.
export const SCHEMA_KEYWORDS = [
  'type', 'type-union', 'properties', 'required', 'additionalProperties:false',
  'additionalProperties:true', 'additionalProperties:schema', 'enum', 'const', 'anyOf', 'oneOf',
  'allOf', '$ref', '$defs', 'definitions', 'recursive-$ref', 'items', 'prefixItems', 'minItems',
  'maxItems', 'uniqueItems', 'pattern', 'format:date-time', 'format:date', 'format:time',
  'format:uuid', 'format:email', 'minLength', 'maxLength', 'minimum', 'maximum',
  'exclusiveMinimum', 'exclusiveMaximum', 'number-range', 'annotations',
];

export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  constructor(seed) { this.next = mulberry32(seed); }
  int(lo, hi) { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  pick(arr) { return arr[this.int(0, arr.length - 1)]; }
  chance(p) { return this.next() < p; }
  shuffle(arr) {
    const a = arr.slice();
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}

const WORDS = ['id', 'name', 'alpha', 'beta', 'gamma', 'value', 'items', 'ünïcødé', '日本語', 'a"b',
  'back\\slash', 'tab\tkey', 'emoji😀', 'new\nline', 'with space', 'x', 'kind', 'count'];
const STRINGS = ['red', 'green', 'blue', 'é', '😀 smile', 'quote"d', 'slash\\', 'line\nbreak', '',
  'ü', 'Ω', 'ok'];
const PATTERNS = [
  '^[a-z]{2,6}$', '^\\d{3}-\\d{4}$', '^[A-Z][a-z]+(?: [A-Z][a-z]+)?$', 'ab', '^(?:yes|no|maybe)$',
  '[0-9]+', '^[^\\s"]{1,8}$', '^\\w+@\\w+\\.com$', '^[\\u00e0-\\u00ff]{1,4}$', '^(a|b)*c$',
  '^#[0-9a-fA-F]{6}$', 'end$', '^start', '^a"b\\\\c$', '^[^a-z]+$', '^.{2,3}$', 'x\\d?y',
  '^(?:\\+|-)?\\d+(?:\\.\\d+)?$', '^[😀-😎]+$', '^(?<year>\\d{4})-(?<m>0[1-9]|1[0-2])$',
];
const FORMATS = ['date-time', 'date', 'time', 'uuid', 'email'];

function annotate(r, s) {
  if (typeof s !== 'object') return s;
  if (r.chance(0.15)) s.title = r.pick(['Thing', 'A value', 'Ünïcode title']);
  if (r.chance(0.15)) s.description = r.pick(['Some field.', 'Described "quoted".', '説明']);
  if (r.chance(0.05)) s.examples = [r.pick(STRINGS)];
  if (r.chance(0.05)) s.default = null;
  return s;
}

function randomValue(r, depth = 0) {
  const k = r.int(0, depth > 1 ? 4 : 6);
  switch (k) {
    case 0: return r.pick(STRINGS);
    case 1: return r.int(-50, 50);
    case 2: return r.pick([true, false]);
    case 3: return null;
    case 4: return r.int(-100, 100) / 4;
    case 5: return [randomValue(r, depth + 1), randomValue(r, depth + 1)];
    default: return { [r.pick(WORDS)]: randomValue(r, depth + 1) };
  }
}

function intRange(r, s) {
  const lo = r.int(-1000, 1000);
  const hi = lo + r.int(0, 5000);
  switch (r.int(0, 4)) {
    case 0: s.minimum = lo; s.maximum = hi; break;
    case 1: s.exclusiveMinimum = lo; s.exclusiveMaximum = hi + 2; break;
    case 2: s.minimum = lo; break;
    case 3: s.maximum = hi; break;
    default: s.minimum = lo; s.exclusiveMaximum = hi + 1; break;
  }
  return s;
}

function numRange(r, s) {
  const lo = r.int(-100, 100) + r.pick([0, 0.5, 0.25]);
  const hi = lo + r.int(2, 500) + r.pick([0, 0.75]);
  if (r.chance(0.5)) s.minimum = lo; else s.exclusiveMinimum = lo;
  if (r.chance(0.5)) s.maximum = hi; else s.exclusiveMaximum = hi;
  return s;
}

class SchemaGen {
  constructor(r) {
    this.r = r;
    this.defs = {};
    this.defsKey = r.chance(0.5) ? '$defs' : 'definitions';
    this.nDefs = 0;
  }

  leaf() {
    const r = this.r;
    switch (r.int(0, 12)) {
      case 0: return { type: 'string' };
      case 1: {
        const s = { type: 'string' };
        if (r.chance(0.7)) s.minLength = r.int(0, 4);
        if (r.chance(0.8) || s.minLength === undefined) s.maxLength = (s.minLength ?? 0) + r.int(0, 12);
        return s;
      }
      case 2: return { type: 'string', pattern: r.pick(PATTERNS) };
      case 3: return { type: 'string', format: r.pick(FORMATS) };
      case 4: return { type: 'integer' };
      case 5: return intRange(r, { type: 'integer' });
      case 6: return { type: 'number' };
      case 7: return numRange(r, { type: 'number' });
      case 8: return { type: 'boolean' };
      case 9: return { type: 'null' };
      case 10: {
        const n = r.int(1, 5);
        const values = [];
        for (let i = 0; i < n; i++) values.push(randomValue(r));
        return r.chance(0.3) ? { type: 'string', enum: [...values.filter((v) => typeof v === 'string'), 'fallback'] }
          : { enum: values };
      }
      case 11: return { const: randomValue(r) };
      default: return r.chance(0.5) ? {} : true;
    }
  }

  object(depth) {
    const r = this.r;
    const names = r.shuffle(WORDS).slice(0, r.int(0, 5));
    const s = { type: 'object', properties: {} };
    for (const n of names) s.properties[n] = this.schema(depth + 1);
    const req = names.filter(() => r.chance(0.6));
    const mode = r.int(0, 5);
    if (mode === 0) s.additionalProperties = false;
    else if (mode === 1) s.additionalProperties = true;
    else if (mode === 2) s.additionalProperties = this.schema(depth + 2);
    if (r.chance(0.15) && s.additionalProperties !== false) req.push('extra_required');
    if (req.length > 0) s.required = req;
    return s;
  }

  array(depth) {
    const r = this.r;
    const s = { type: 'array' };
    if (r.chance(0.3)) {
      const n = r.int(1, 3);
      s.prefixItems = [];
      for (let i = 0; i < n; i++) s.prefixItems.push(this.schema(depth + 1));
      if (r.chance(0.5)) s.items = false;
      else if (r.chance(0.7)) s.items = this.schema(depth + 1);
      if (r.chance(0.5)) s.minItems = r.int(0, s.items === false ? n : n + 1);
    } else {
      if (r.chance(0.9)) s.items = this.schema(depth + 1);
      if (r.chance(0.5)) s.minItems = r.int(0, 2);
      if (r.chance(0.6)) s.maxItems = (s.minItems ?? 0) + r.int(0, 4);
    }
    if (r.chance(0.1)) s.uniqueItems = false;
    return s;
  }

  oneOf(depth) {
    const r = this.r;
    if (r.chance(0.5)) {
      // Distinct JSON types never overlap.
      const kinds = r.shuffle(['string', 'integer', 'boolean', 'null', 'array', 'object']).slice(0, r.int(2, 3));
      return {
        oneOf: kinds.map((t) => {
          if (t === 'string') return { type: 'string', maxLength: r.int(1, 8) };
          if (t === 'integer') return intRange(r, { type: 'integer' });
          if (t === 'array') return { type: 'array', items: this.leaf(), maxItems: 3 };
          if (t === 'object') return this.object(depth + 1);
          return { type: t };
        }),
      };
    }
    // A discriminator property with distinct const values.
    const tags = r.shuffle(['circle', 'square', 'line', 'point']).slice(0, r.int(2, 3));
    return {
      oneOf: tags.map((tag) => ({
        type: 'object',
        properties: { kind: { const: tag }, size: this.schema(depth + 2) },
        required: ['kind'],
        additionalProperties: false,
      })),
    };
  }

  ref(depth) {
    const name = `def${this.nDefs++}`;
    this.defs[name] = this.schema(depth + 1);
    return { $ref: `#/${this.defsKey}/${name}` };
  }

  schema(depth) {
    const r = this.r;
    if (depth >= 3) return annotate(r, this.leaf());
    const k = r.int(0, 13);
    let s;
    if (k <= 4) s = this.leaf();
    else if (k <= 6) s = this.object(depth);
    else if (k === 7) s = this.array(depth);
    else if (k === 8) s = { anyOf: [this.schema(depth + 1), this.schema(depth + 1)] };
    else if (k === 9) s = this.oneOf(depth);
    else if (k === 10) s = { allOf: [this.schema(depth + 1)], description: 'single allOf' };
    else if (k === 11) {
      s = { type: r.pick([['string', 'null'], ['integer', 'boolean'], ['number', 'string', 'null']]) };
      if (s.type.includes('string') && r.chance(0.5)) s.maxLength = r.int(1, 10);
      if (s.type.includes('integer') && r.chance(0.5)) intRange(r, s);
    } else if (k === 12) s = this.ref(depth);
    else s = this.array(depth);
    return typeof s === 'object' ? annotate(r, s) : s;
  }
}

function recursiveTree(r) {
  return {
    type: 'object',
    properties: {
      label: { type: 'string', maxLength: 12 },
      weight: intRange(r, { type: 'integer' }),
      children: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: r.int(1, 3) },
    },
    required: ['label'],
    additionalProperties: false,
  };
}

export function generateSchemas(seed, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const r = new Rng(seed * 1000003 + i);
    const g = new SchemaGen(r);
    let root;
    if (i % 10 === 3) {
      root = { $schema: 'https://json-schema.org/draft/2020-12/schema', $ref: '#/$defs/node', $defs: { node: recursiveTree(r) } };
    } else {
      root = r.chance(0.75) ? g.object(0) : g.schema(0);
      if (typeof root !== 'object') root = { anyOf: [root, { type: 'null' }] };
      if (g.nDefs > 0) root[g.defsKey] = { ...(root[g.defsKey] ?? {}), ...g.defs };
    }
    out.push(root);
  }
  return out;
}

// The keywords (SCHEMA_KEYWORDS names) a schema uses, for coverage checks.
export function schemaKeywords(schema, acc = new Set(), root = true) {
  if (schema === null || typeof schema !== 'object') return acc;
  if (Array.isArray(schema)) {
    for (const s of schema) schemaKeywords(s, acc, false);
    return acc;
  }
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'type') acc.add(Array.isArray(v) ? 'type-union' : 'type');
    else if (k === 'additionalProperties') acc.add(`additionalProperties:${v === false ? 'false' : v === true ? 'true' : 'schema'}`);
    else if (k === 'format') acc.add(`format:${v}`);
    else if (k === '$ref') acc.add(v === '#/$defs/node' ? 'recursive-$ref' : '$ref');
    else if (['title', 'description', 'examples', 'default', '$schema'].includes(k)) acc.add('annotations');
    else acc.add(k);
    if ((k === 'minimum' || k === 'exclusiveMinimum') && schema.type === 'number') acc.add('number-range');
    if (['properties', '$defs', 'definitions'].includes(k)) {
      for (const s of Object.values(v)) schemaKeywords(s, acc, false);
    } else if (k !== 'enum' && k !== 'const' && k !== 'examples' && k !== 'default') {
      schemaKeywords(v, acc, false);
    }
  }
  return acc;
}

// Regexes in the subset JavaScript and turbine share.
const LITERALS = ['a', 'b', 'z', 'Q', '0', '7', '_', ' ', '-', ',', ':', '"', "'", '=', '@', 'é', '日', '😀', '\n'];
const META = new Set(['^', '$', '\\', '.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '/']);
const CLASSES = ['[a-z]', '[A-Z0-9_]', '[^a-z]', '[^\\s]', '[aeiou]', '[0-9a-f]', '[à-ÿ]', '[\\-+.]',
  '[^"\\\\]', '\\d', '\\w', '\\s', '\\D', '\\W', '\\S', '.', '[😀-😎]'];

function escapeLiteral(c) {
  if (c === '\n') return '\\n';
  return META.has(c) ? `\\${c}` : c;
}

// Inside groups only bounded counts: nested unbounded repeats of overlapping classes make
// automata that blow up when determinized (an error, not a test of matching).
function quantifier(r, bounded) {
  if (bounded) return r.pick(['', '', '?', `{${r.int(1, 2)}}`, `{0,${r.int(1, 2)}}`]);
  switch (r.int(0, 9)) {
    case 0: return '*';
    case 1: return '+';
    case 2: return '?';
    case 3: return `{${r.int(1, 3)}}`;
    case 4: { const m = r.int(0, 2); return `{${m},${m + r.int(0, 3)}}`; }
    case 5: return `{${r.int(0, 2)},}`;
    case 6: return '*?';
    default: return '';
  }
}

function regexAlt(r, depth) {
  const n = depth === 0 ? r.int(1, 3) : r.int(1, 2);
  const seqs = [];
  for (let i = 0; i < n; i++) {
    let s = '';
    const m = r.int(1, 4);
    for (let j = 0; j < m; j++) {
      const k = r.int(0, 9);
      let atom;
      if (k <= 3) {
        atom = '';
        const len = r.int(1, 3);
        for (let q = 0; q < len; q++) atom += escapeLiteral(r.pick(LITERALS));
        if (len > 1) atom = `(?:${atom})`;
      } else if (k <= 7 || depth >= 2) atom = r.pick(CLASSES);
      else atom = `(${r.chance(0.5) ? '?:' : ''}${regexAlt(r, depth + 1)})`;
      s += atom + quantifier(r, depth > 0 || atom.startsWith('(') && !atom.startsWith('(?:') ||
        (atom.startsWith('(?:') && atom.length > 8));
    }
    seqs.push(s);
  }
  return seqs.join('|');
}

export function generateRegexes(seed, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const r = new Rng(seed * 7919 + i);
    let re = regexAlt(r, 0);
    if (r.chance(0.2) && !re.includes('|')) re = `^${re}$`;
    out.push(re);
  }
  return out;
}

export function generateChoices(seed, n) {
  const pool = ['yes', 'no', 'maybe', 'y', 'ye', 'yesterday', 'positive', 'négatif', '中立', '😀',
    'a b', 'quote"', 'line\nbreak', 'A', 'AB', 'ABC', '{"json": true}', ' leading', ''];
  const out = [];
  for (let i = 0; i < n; i++) {
    const r = new Rng(seed * 104729 + i);
    out.push(r.shuffle(pool).slice(0, r.int(2, 6)));
  }
  return out;
}
