// Issue 18's frontend items through the official `openai` client and raw HTTP: no ignored
// constraint fields (2), "usage": null before the usage chunk (3), GET /v1/models/{id} (6), and
// /health answering while heavy prompts and chat templates are preprocessed (11).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, MODEL_NAME } from './server.mjs';

let server;
let client;

before(async () => {
  server = await startServer();
  client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { assert.equal(await server.stop(), 0, server.log()); });

const messages = [{ role: 'user', content: 'Tell me a story' }];

test('constraint fields are a 400 naming the field, not unconstrained text', async () => {
  const fields = {
    guided_json: { type: 'object' },
    guided_regex: '[a-z]+',
    guided_choice: ['yes', 'no'],
    guided_grammar: 'root ::= "a"',
    structured_outputs: { choice: ['a', 'b'] },
  };
  for (const [field, value] of Object.entries(fields)) {
    for (const call of [
      () => client.chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 4, [field]: value }),
      () => client.completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 4, [field]: value }),
    ]) {
      await assert.rejects(call(), (err) => {
        assert.ok(err instanceof OpenAI.BadRequestError, `${field}: ${err}`);
        assert.equal(err.param, field);
        return true;
      });
    }
  }
  // response_format: any value on completions, anything but text on chat.
  await assert.rejects(
    client.completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 4, response_format: { type: 'json_object' } }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'response_format');
  await assert.rejects(
    client.chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 4, response_format: { type: 'json_object' } }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'response_format');
  const text = await client.chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 4, response_format: { type: 'text' } });
  assert.equal(text.choices.length, 1);
});

test('with include_usage every chunk before the usage chunk has usage: null', async () => {
  for (const stream of [
    await client.chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 6, temperature: 0, stream: true, stream_options: { include_usage: true } }),
    await client.completions.create({ model: MODEL_NAME, prompt: 'Once upon', max_tokens: 6, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  ]) {
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.ok(chunks.length >= 3, JSON.stringify(chunks));
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.completion_tokens, 6);
    for (const c of chunks.slice(0, -1)) {
      assert.ok('usage' in c, JSON.stringify(c));
      assert.equal(c.usage, null);
    }
  }
  // Without include_usage no chunk has the key.
  const plain = await client.chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 3, stream: true });
  for await (const c of plain) assert.ok(!('usage' in c), JSON.stringify(c));
});

test('GET /v1/models/{id}: the model, or model_not_found', async () => {
  const m = await client.models.retrieve(MODEL_NAME);
  assert.equal(m.id, MODEL_NAME);
  assert.equal(m.object, 'model');
  await assert.rejects(client.models.retrieve('no-such-model'), (err) => {
    assert.ok(err instanceof OpenAI.NotFoundError, String(err));
    assert.equal(err.code, 'model_not_found');
    assert.equal(err.param, 'model');
    return true;
  });
  // Ids with a slash reach the model route too (not a route 404).
  const r = await fetch(`${server.base}/v1/models/org/no-such-model`);
  assert.equal(r.status, 404);
  assert.equal((await r.json()).error.code, 'model_not_found');
});

// Polls /health until `pending` settles; returns the polls answered while it was pending.
async function healthWhile(pending) {
  let settled = false;
  const all = pending.finally(() => { settled = true; });
  const answered = [];
  while (!settled) {
    const t0 = performance.now();
    const h = await fetch(`${server.base}/health`);
    assert.equal(h.status, 200);
    await h.text();
    if (!settled) answered.push(performance.now() - t0);
  }
  await all;
  return answered;
}

test('/health answers while eight heavy chat templates render', async () => {
  // Each render loops 300k times, far longer than a /health round trip.
  const heavy = '{% for i in range(300000) %}{% set x = i %}{% endfor %}'
    + '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:';
  const requests = Array.from({ length: 8 }, () => fetch(`${server.base}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL_NAME, messages, max_tokens: 2, chat_template: heavy }),
  }).then(async (r) => ({ status: r.status, body: await r.text() })));
  const answered = await healthWhile(Promise.all(requests));
  for (const r of await Promise.all(requests)) assert.equal(r.status, 200, r.body);
  assert.ok(answered.length >= 1, '/health answered while the templates rendered');
  console.log(`/health answered ${answered.length} times while 8 heavy templates rendered; `
    + `slowest ${Math.max(...answered).toFixed(1)} ms`);
});

test('eight 10 MB prompts are refused before tokenization while /health answers', async () => {
  const prompt = 'Once upon a time '.repeat(10 * 1024 * 1024 / 17);
  const requests = Array.from({ length: 8 }, () => fetch(`${server.base}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL_NAME, prompt, max_tokens: 2 }),
  }).then(async (r) => ({ status: r.status, body: await r.json() })));
  const answered = await healthWhile(Promise.all(requests));
  for (const r of await Promise.all(requests)) {
    assert.equal(r.status, 400);
    assert.equal(r.body.error.param, 'prompt');
    assert.match(r.body.error.message, /at least \d+ tokens/);
  }
  console.log(`/health answered ${answered.length} times during eight 10 MB prompts`);
  // The server still serves.
  const ok = await client.completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 2 });
  assert.equal(ok.choices.length, 1);
});
