// Structured outputs end to end with a real trained model (stories260K), temperature 1.0 and
// random seeds: 200 generated JSON Schemas (validated by ajv), 100 generated regexes (full match
// by JavaScript's RegExp) and choice lists through the HTTP API in every request spelling
// (response_format, structured_outputs, guided_*), a too-small max_tokens, bad constraints (400
// with `param`), and two clients: openai's chat.completions.parse with a zod schema and the AI
// SDK's generateObject. The constraints come from the same seeded generator as the walk property
// test (tests/tools/structured/constraint_gen.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { generateObject } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { startServer, MODEL_NAME } from './server.mjs';
import {
  generateSchemas, generateRegexes, generateChoices,
} from '../tools/structured/constraint_gen.mjs';

const SEED = Number(process.env.STRUCTURED_SEED ?? 19);  // the constraints; sampling seeds are random
const CONCURRENCY = 8;
// stories260K has a 512-token context: room for any generated constraint's output.
const MAX_TOKENS = 448;

let server;
before(async () => { server = await startServer(['--max-num-seqs', '16']); });
after(async () => { await server?.stop(); });

async function post(path, body) {
  const res = await fetch(`${server.base}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

const randomSeed = () => Math.floor(Math.random() * 2 ** 31);

// Completions and chat alternately, each with one of the constraint spellings.
function request(i, constraint, extra = {}) {
  const chat = i % 2 === 1;
  const base = chat
    ? { model: MODEL_NAME, messages: [{ role: 'user', content: 'Once upon a time' }] }
    : { model: MODEL_NAME, prompt: 'Once upon a time' };
  return {
    path: chat ? '/v1/chat/completions' : '/v1/completions',
    body: { ...base, temperature: 1.0, seed: randomSeed(), max_tokens: MAX_TOKENS, ...constraint, ...extra },
  };
}
const textOf = (body) => body.choices[0].message?.content ?? body.choices[0].text;

async function runAll(items, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

function schemaConstraint(schema, i) {
  switch (i % 4) {
    case 0: return { response_format: { type: 'json_schema', json_schema: { name: `s${i}`, schema, strict: true } } };
    case 1: return { response_format: { type: 'json_schema', json_schema: { name: `s${i}`, schema } } };
    case 2: return { structured_outputs: { json: schema } };
    default: return { guided_json: JSON.stringify(schema) };
  }
}

test('200 generated JSON schemas: every output parses and validates with ajv', { timeout: 240000 }, async () => {
  const schemas = generateSchemas(SEED, 200);
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const failures = [];
  await runAll(schemas, async (schema, i) => {
    const { path, body } = request(i, schemaConstraint(schema, i));
    const res = await post(path, body);
    const where = `schema ${i} (${path}, seed ${body.seed}): ${JSON.stringify(schema).slice(0, 300)}`;
    if (res.status !== 200) return failures.push(`${res.status} ${JSON.stringify(res.body)}: ${where}`);
    const text = textOf(res.body);
    const finish = res.body.choices[0].finish_reason;
    if (finish !== 'stop') return failures.push(`finish ${finish} ${JSON.stringify(text).slice(0, 200)}: ${where}`);
    let value;
    try { value = JSON.parse(text); } catch { return failures.push(`not JSON ${JSON.stringify(text).slice(0, 300)}: ${where}`); }
    const validate = ajv.compile(schema);
    if (!validate(value)) failures.push(`invalid ${JSON.stringify(validate.errors)} ${text.slice(0, 300)}: ${where}`);
  });
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of 200 failed`);
});

test('100 generated regexes: every output full-matches RegExp', { timeout: 180000 }, async () => {
  const regexes = generateRegexes(SEED, 100);
  const failures = [];
  await runAll(regexes, async (re, i) => {
    const constraint = i % 2 === 0 ? { guided_regex: re } : { structured_outputs: { regex: re } };
    const { path, body } = request(i, constraint);
    const res = await post(path, body);
    const where = `regex ${i} /${re}/ (${path}, seed ${body.seed})`;
    if (res.status !== 200) return failures.push(`${res.status} ${JSON.stringify(res.body)}: ${where}`);
    const text = textOf(res.body);
    if (res.body.choices[0].finish_reason !== 'stop') return failures.push(`finish ${res.body.choices[0].finish_reason} ${JSON.stringify(text)}: ${where}`);
    if (!new RegExp(`^(?:${re})$`, 'u').test(text)) failures.push(`no match ${JSON.stringify(text)}: ${where}`);
  });
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of 100 failed`);
});

test('choices: the output is exactly one of them', { timeout: 120000 }, async () => {
  const lists = generateChoices(SEED, 40);
  const failures = [];
  await runAll(lists, async (list, i) => {
    const constraint = i % 2 === 0 ? { guided_choice: list } : { structured_outputs: { choice: list } };
    const { path, body } = request(i, constraint);
    const res = await post(path, body);
    if (res.status !== 200) return failures.push(`${res.status} ${JSON.stringify(res.body)}`);
    const text = textOf(res.body);
    if (!list.includes(text)) failures.push(`${JSON.stringify(text)} not in ${JSON.stringify(list)}`);
  });
  assert.deepEqual(failures, []);
});

test('json_object: a JSON object', async () => {
  for (let i = 0; i < 6; i++) {
    const { path, body } = request(i, { response_format: { type: 'json_object' } });
    const res = await post(path, body);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.choices[0].finish_reason, 'stop');
    const v = JSON.parse(textOf(res.body));
    assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), textOf(res.body));
  }
});

test('max_tokens too small: finish_reason length and a prefix of the valid output', async () => {
  const schema = {
    type: 'object',
    properties: { name: { type: 'string' }, tags: { type: 'array', items: { enum: ['a', 'b'] } } },
    required: ['name', 'tags'], additionalProperties: false,
  };
  const ajv = new Ajv2020({ strict: false });
  for (const max of [1, 3, 6]) {
    const seed = randomSeed();
    const constraint = { response_format: { type: 'json_schema', json_schema: { name: 'p', schema } } };
    const full = await post('/v1/completions', { model: MODEL_NAME, prompt: 'Once', temperature: 1.0, seed, max_tokens: MAX_TOKENS, ...constraint });
    const cut = await post('/v1/completions', { model: MODEL_NAME, prompt: 'Once', temperature: 1.0, seed, max_tokens: max, ...constraint });
    assert.equal(full.status, 200);
    assert.equal(cut.status, 200);
    const whole = full.body.choices[0].text;
    assert.ok(ajv.validate(schema, JSON.parse(whole)), whole);
    assert.equal(cut.body.choices[0].finish_reason, 'length');
    assert.equal(cut.body.usage.completion_tokens, max);
    // Same seed, same engine: the cut output is where the complete one started.
    assert.ok(whole.startsWith(cut.body.choices[0].text), `${cut.body.choices[0].text} vs ${whole}`);
    assert.ok(cut.body.choices[0].text.startsWith('{'));
  }
});

test('bad constraints are a 400 with param and message; the server stays up', async () => {
  const big = 'a'.repeat(300 * 1024);
  const cases = [
    [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'banana' } } } }, 'response_format', /banana/],
    [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', not: { const: 'a' } } } } }, 'response_format', /not/],
    [{ guided_json: { type: 'integer', minimum: 5, maximum: 1 } }, 'guided_json', /./],
    [{ guided_regex: '(ab' }, 'guided_regex', /./],
    [{ structured_outputs: { grammar: 'root ::= ("a"' } }, 'structured_outputs.grammar', /./],
    [{ guided_grammar: 'start ::= "a"' }, 'guided_grammar', /root/],
    [{ guided_regex: big }, 'guided_regex', /./],
    [{ guided_choice: [] }, 'guided_choice', /empty/],
    [{ guided_json: { type: 'object' }, guided_regex: 'a+' }, 'guided_regex', /only one/],
    [{ response_format: { type: 'json_object' }, structured_outputs: { regex: 'a' } }, 'structured_outputs.regex', /only one/],
    [{ response_format: { type: 'json_schema' } }, 'response_format.json_schema', /required/],
    [{ response_format: { type: 'yaml' } }, 'response_format', /yaml/],
    [{ structured_outputs: { structural_tag: '{}' } }, 'structured_outputs.structural_tag', /not supported/],
  ];
  for (const [constraint, param, message] of cases) {
    for (const chat of [false, true]) {
      const { path, body } = request(chat ? 1 : 0, constraint);
      const res = await post(path, body);
      const what = `${JSON.stringify(constraint).slice(0, 200)} on ${path}`;
      assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body).slice(0, 300)}`);
      assert.equal(res.body.error.param, param, what);
      assert.match(res.body.error.message, message, what);
    }
  }
  const ok = await post('/v1/completions', { model: MODEL_NAME, prompt: 'Once', max_tokens: 4, guided_choice: ['yes', 'no'] });
  assert.equal(ok.status, 200);
  assert.ok(['yes', 'no'].includes(ok.body.choices[0].text));
});

test('streaming: the deltas join into a valid output', async () => {
  const schema = { type: 'object', properties: { n: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['n'] };
  const client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'none' });
  const stream = await client.chat.completions.create({
    model: MODEL_NAME, messages: [{ role: 'user', content: 'Count' }], stream: true, temperature: 1.0,
    max_tokens: MAX_TOKENS, response_format: { type: 'json_schema', json_schema: { name: 'n', schema } },
  });
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'stop');
  const v = JSON.parse(text);
  assert.ok(Number.isInteger(v.n) && v.n >= 0 && v.n <= 99, text);
});

test('openai client: chat.completions.parse with a zod schema', async () => {
  const client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'none' });
  const Story = z.object({
    title: z.string().max(40),
    mood: z.enum(['happy', 'sad', 'calm']),
    characters: z.array(z.object({ name: z.string().max(20), age: z.number().int().min(1).max(99) })).max(3),
    ending: z.string().max(40).nullable(),
  });
  for (let i = 0; i < 3; i++) {
    const completion = await client.chat.completions.parse({
      model: MODEL_NAME, messages: [{ role: 'user', content: 'Tell me a story' }], temperature: 1.0,
      seed: randomSeed(), max_tokens: MAX_TOKENS, response_format: zodResponseFormat(Story, 'story'),
    });
    const msg = completion.choices[0].message;
    assert.equal(completion.choices[0].finish_reason, 'stop');
    assert.ok(msg.parsed, msg.content);
    assert.deepEqual(Story.parse(msg.parsed), msg.parsed);
  }
});

test('AI SDK: generateObject through @ai-sdk/openai-compatible', async () => {
  const provider = createOpenAICompatible({
    name: 'turbine', baseURL: `${server.base}/v1`, apiKey: 'none', supportsStructuredOutputs: true,
  });
  const schema = z.object({
    hero: z.string().max(30),
    place: z.enum(['forest', 'sea', 'town']),
    friends: z.array(z.string().max(15)).max(3),
  });
  for (let i = 0; i < 3; i++) {
    const { object, finishReason } = await generateObject({
      model: provider(MODEL_NAME), schema, prompt: 'Once upon a time', temperature: 1.0,
      seed: randomSeed(), maxOutputTokens: MAX_TOKENS, maxRetries: 0,
    });
    assert.equal(finishReason, 'stop');
    assert.deepEqual(schema.parse(object), object);
  }
});
