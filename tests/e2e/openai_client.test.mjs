// The official `openai` npm client against turbine: every shape it relies on.
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

function assertUsage(usage) {
  assert.ok(Number.isInteger(usage.prompt_tokens) && usage.prompt_tokens > 0);
  assert.ok(Number.isInteger(usage.completion_tokens) && usage.completion_tokens > 0);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
}

test('models list', async () => {
  const page = await client.models.list();
  assert.equal(page.data.length, 1);
  const m = page.data[0];
  assert.equal(m.id, MODEL_NAME);
  assert.equal(m.object, 'model');
  assert.equal(typeof m.created, 'number');
  assert.equal(typeof m.owned_by, 'string');
});

test('chat completion, unary', async () => {
  const r = await client.chat.completions.create({
    model: MODEL_NAME, messages: [{ role: 'user', content: 'Tell me a story.' }],
    max_tokens: 12, temperature: 0,
  });
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, MODEL_NAME);
  assert.equal(typeof r.created, 'number');
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.ok(c.message.content.length > 0);
  assert.ok(['stop', 'length'].includes(c.finish_reason));
  assert.equal(r.usage.completion_tokens <= 12, true);
  assertUsage(r.usage);
});

test('chat completion, streaming with usage', async () => {
  const unary = await client.chat.completions.create({
    model: MODEL_NAME, messages: [{ role: 'user', content: 'Once upon a time' }],
    max_tokens: 20, temperature: 0,
  });
  const stream = await client.chat.completions.create({
    model: MODEL_NAME, messages: [{ role: 'user', content: 'Once upon a time' }],
    max_tokens: 20, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let role = null;
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.match(chunk.id, /^chatcmpl-/);
    assert.equal(chunk.model, MODEL_NAME);
    if (chunk.usage) {
      usage = chunk.usage;
      assert.equal(chunk.choices.length, 0);
      continue;
    }
    const d = chunk.choices[0].delta;
    if (d.role) role = d.role;
    if (d.content) text += d.content;
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.ok(chunks > 3);
  assert.equal(role, 'assistant');
  assert.equal(text, unary.choices[0].message.content);
  assert.equal(finish, unary.choices[0].finish_reason);
  assertUsage(usage);
  // The second request may reuse the first one's prompt blocks (prefix caching).
  const counts = ({ prompt_tokens_details: _, ...rest }) => rest;
  assert.deepEqual(counts(usage), counts(unary.usage));
});

test('completion, unary and streaming agree', async () => {
  const r = await client.completions.create({
    model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 16, temperature: 0,
  });
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].index, 0);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 16);
  assertUsage(r.usage);
  const stream = await client.completions.create({
    model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 16, temperature: 0, stream: true,
  });
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'text_completion');
    text += chunk.choices[0].text;
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  assert.equal(text, r.choices[0].text);
  assert.equal(finish, 'length');
});

test('completion with token-id prompt, stop string and logprobs', async () => {
  const r = await client.completions.create({
    model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 40, temperature: 0, stop: ['Lily'],
    logprobs: 2,
  });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.ok(!r.choices[0].text.includes('Lily'));
  assert.ok(r.choices[0].text.startsWith(', there was a little girl named'), r.choices[0].text);
  const lp = r.choices[0].logprobs;
  assert.ok(Array.isArray(lp.tokens) && lp.tokens.length > 0);
  assert.equal(lp.tokens.length, lp.token_logprobs.length);
  assert.equal(lp.top_logprobs.length, lp.tokens.length);
  for (const v of lp.token_logprobs) assert.ok(v <= 0);
  assert.ok(Object.keys(lp.top_logprobs[0]).length <= 2);

  const tok = await (await fetch(`${server.base}/tokenize`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL_NAME, prompt: 'Once upon a time' }),
  })).json();
  assert.equal(tok.count, tok.tokens.length);
  assert.equal(tok.tokens[0], 1);  // BOS
  const byIds = await client.completions.create({
    model: MODEL_NAME, prompt: tok.tokens, max_tokens: 8, temperature: 0,
  });
  const byText = await client.completions.create({
    model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 8, temperature: 0,
  });
  assert.equal(byIds.choices[0].text, byText.choices[0].text);
  const detok = await (await fetch(`${server.base}/detokenize`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL_NAME, tokens: tok.tokens }),
  })).json();
  assert.equal(detok.prompt, 'Once upon a time');
});

test('seeded sampling is reproducible', async () => {
  const req = { model: MODEL_NAME, prompt: 'The cat', max_tokens: 24, temperature: 1.0, top_p: 0.9, seed: 1234 };
  const a = await client.completions.create(req);
  const b = await client.completions.create(req);
  assert.equal(a.choices[0].text, b.choices[0].text);
});

test('unknown model is a 404 NotFoundError', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }),
    (err) => {
      assert.ok(err instanceof OpenAI.NotFoundError, String(err));
      assert.equal(err.status, 404);
      assert.equal(typeof err.error.message, 'string');
      assert.ok(err.error.message.includes('no-such-model'));
      assert.equal(err.code, 'model_not_found');
      return true;
    });
});

test('invalid parameters are a 400 BadRequestError', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: MODEL_NAME, messages: [{ role: 'user', content: 'hi' }], temperature: 5 }),
    (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, String(err));
      assert.equal(err.status, 400);
      assert.equal(err.param, 'temperature');
      assert.equal(err.type, 'invalid_request_error');
      return true;
    });
  await assert.rejects(
    client.completions.create({ model: MODEL_NAME, prompt: 'x', n: 17 }),  // above the limit (16)
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'n');
});
