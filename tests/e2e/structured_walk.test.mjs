// Property test of constrained decoding without a model: seeded random walks through the token
// masks (build/structured_walk: uniform among the allowed tokens of a real tokenizer, a stop token
// only when allowed, steered to finish after a soft length) must give outputs that the reference
// validators accept: ajv (JSON Schema 2020-12 + ajv-formats) for 200 generated schemas,
// JavaScript's RegExp (full match, 'u' flag) for 100 generated regexes, membership for choices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import {
  generateSchemas, generateRegexes, generateChoices, SCHEMA_KEYWORDS, schemaKeywords,
} from '../tools/structured/constraint_gen.mjs';

const SEED = Number(process.env.STRUCTURED_SEED ?? 19);  // override to explore other seeds
const SHARED = process.env.TURBINE_SHARED;

function walkerPath() {
  if (process.env.STRUCTURED_WALK_BIN) return process.env.STRUCTURED_WALK_BIN;
  if (!process.env.TURBINE_BIN) throw new Error('TURBINE_BIN is not set (run through tests/e2e/run.sh)');
  return path.join(path.dirname(process.env.TURBINE_BIN), 'structured_walk');
}

// Runs the walker over `specs` ({id, kind, text, walks?}) with one tokenizer; returns its lines.
function walk(tokenizer, specs, seed) {
  const bin = walkerPath();
  assert.ok(fs.existsSync(bin), `${bin} is missing (build the structured_walk target)`);
  const input = specs.map((s) => JSON.stringify(s)).join('\n') + '\n';
  const r = spawnSync(bin, ['--tokenizer', tokenizer, '--seed', String(seed), '--shared', SHARED],
    { input, maxBuffer: 1 << 28, encoding: 'utf8' });
  assert.equal(r.status, 0, `structured_walk failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l));
}

function describe(out, spec) {
  return `spec ${out.id} (${spec.kind}) walk ${out.walk}: ${JSON.stringify(out.text).slice(0, 400)}\n` +
    `constraint: ${spec.text.slice(0, 600)}`;
}

test('the generated schemas cover every supported keyword', () => {
  const used = new Set();
  for (const s of generateSchemas(SEED, 200)) schemaKeywords(s, used);
  assert.deepEqual(SCHEMA_KEYWORDS.filter((k) => !used.has(k)), []);
});

test('walks through 200 generated JSON schemas validate with ajv', { timeout: 240000 }, () => {
  const schemas = generateSchemas(SEED, 200);
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const specs = schemas.map((s, i) => ({ id: i, kind: 'json_schema', text: JSON.stringify(s) }));
  // Alternate vocabularies: byte-level BPE with 128k tokens and with 50k.
  const outs = [
    ...walk('llama3', specs.filter((s) => s.id % 2 === 0), SEED),
    ...walk('gpt2', specs.filter((s) => s.id % 2 === 1), SEED),
  ];
  assert.equal(outs.length, schemas.length);
  let valid = 0;
  const failures = [];
  for (const out of outs) {
    const spec = specs[out.id];
    if (!out.ok) { failures.push(`spec ${out.id} did not compile: ${out.error}\n${spec.text}`); continue; }
    if (!out.complete) { failures.push(`incomplete ${describe(out, spec)}`); continue; }
    let value;
    try { value = JSON.parse(out.text); } catch (e) { failures.push(`not JSON: ${describe(out, spec)}`); continue; }
    const validate = ajv.compile(schemas[out.id]);
    if (validate(value)) valid++;
    else failures.push(`invalid ${JSON.stringify(validate.errors)}: ${describe(out, spec)}`);
  }
  assert.deepEqual(failures.slice(0, 5), []);
  assert.equal(valid, schemas.length);
});

test('walks through 100 generated regexes full-match RegExp', { timeout: 120000 }, () => {
  const regexes = generateRegexes(SEED, 100);
  const specs = regexes.map((re, i) => ({ id: i, kind: 'regex', text: re }));
  const outs = walk('llama2', specs, SEED);
  assert.equal(outs.length, regexes.length);
  const failures = [];
  for (const out of outs) {
    const spec = specs[out.id];
    if (!out.ok) { failures.push(`regex ${out.id} did not compile: ${out.error}: ${spec.text}`); continue; }
    if (!out.complete) { failures.push(`incomplete ${describe(out, spec)}`); continue; }
    if (!new RegExp(`^(?:${spec.text})$`, 'u').test(out.text)) failures.push(`no match ${describe(out, spec)}`);
  }
  assert.deepEqual(failures.slice(0, 5), []);
});

test('walks through choices give exactly one choice', { timeout: 60000 }, () => {
  const lists = generateChoices(SEED, 30);
  const specs = lists.map((l, i) => ({ id: i, kind: 'choice', text: JSON.stringify(l), walks: 3 }));
  const outs = walk('qwen3', specs, SEED);
  assert.equal(outs.length, lists.length * 3);
  for (const out of outs) {
    assert.ok(out.ok && out.complete, JSON.stringify(out));
    assert.ok(lists[out.id].includes(out.text), `${JSON.stringify(out.text)} not in ${JSON.stringify(lists[out.id])}`);
  }
});

test('walks through json_object give JSON objects', { timeout: 60000 }, () => {
  const outs = walk('stories260K', [{ id: 0, kind: 'json_object', text: '', walks: 10 }], SEED);
  for (const out of outs) {
    assert.ok(out.ok && out.complete, JSON.stringify(out));
    const v = JSON.parse(out.text);
    assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), out.text);
  }
});
