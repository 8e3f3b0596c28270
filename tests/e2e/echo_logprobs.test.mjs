// Completions with echo and logprobs through the official `openai` client (issue 18 item 4):
// what lm-evaluation-harness's loglikelihood tasks send (echo, max_tokens 0, logprobs 1), the
// prompt's logprobs with a completion, the streamed echo, and the 400s.
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

const PROMPT = 'Once upon a time, there was a little girl';

// Logprobs computed in differently shaped batches (a prefix-cache hit, another chunking) agree to
// float rounding, not bit for bit.
function assertClose(a, b) {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === null || b[i] === null) assert.equal(a[i], b[i]);
    else assert.ok(Math.abs(a[i] - b[i]) < 1e-3, `${i}: ${a[i]} vs ${b[i]}`);
  }
}

function checkPromptLogprobs(lp, n) {
  assert.equal(lp.tokens.length >= n, true);
  assert.equal(lp.token_logprobs.length, lp.tokens.length);
  assert.equal(lp.top_logprobs.length, lp.tokens.length);
  assert.equal(lp.text_offset.length, lp.tokens.length);
  assert.equal(lp.token_logprobs[0], null);  // nothing precedes the first token
  assert.equal(lp.top_logprobs[0], null);
  for (let i = 1; i < n; i++) {
    assert.equal(typeof lp.token_logprobs[i], 'number');
    assert.ok(lp.token_logprobs[i] <= 0);
    const top = Object.values(lp.top_logprobs[i]);
    assert.equal(top.length, 1);
    // The best alternative is at least as likely as the prompt's token.
    assert.ok(top[0] >= lp.token_logprobs[i] - 1e-4);
    assert.ok(lp.text_offset[i] >= lp.text_offset[i - 1]);
  }
}

test('loglikelihood request: echo, max_tokens 0, logprobs 1', async () => {
  const r = await client.completions.create({
    model: MODEL_NAME, prompt: PROMPT, echo: true, max_tokens: 0, logprobs: 1, temperature: 0,
  });
  const c = r.choices[0];
  assert.equal(c.text, PROMPT);
  assert.equal(c.finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 0);
  assert.equal(c.logprobs.tokens.length, r.usage.prompt_tokens);
  checkPromptLogprobs(c.logprobs, r.usage.prompt_tokens);
  // Deterministic, and the same whether the prompt is in the prefix cache or not.
  const again = await client.completions.create({
    model: MODEL_NAME, prompt: PROMPT, echo: true, max_tokens: 0, logprobs: 1,
  });
  assertClose(again.choices[0].logprobs.token_logprobs, c.logprobs.token_logprobs);
});

test('echo with a completion: prompt logprobs, then the completion\'s', async () => {
  const plain = await client.completions.create({
    model: MODEL_NAME, prompt: PROMPT, max_tokens: 5, logprobs: 2, temperature: 0,
  });
  const r = await client.completions.create({
    model: MODEL_NAME, prompt: PROMPT, echo: true, max_tokens: 5, logprobs: 2, temperature: 0,
  });
  const c = r.choices[0];
  assert.equal(c.text, PROMPT + plain.choices[0].text);
  const n = r.usage.prompt_tokens;
  assert.equal(c.logprobs.tokens.length, n + r.usage.completion_tokens);
  assert.equal(c.logprobs.token_logprobs[0], null);
  assertClose(c.logprobs.token_logprobs.slice(n), plain.choices[0].logprobs.token_logprobs);
  for (let i = 1; i < c.logprobs.tokens.length; i++)
    assert.equal(Object.keys(c.logprobs.top_logprobs[i]).length, 2);
});

test('streamed echo sends the prompt and its logprobs in the first chunk', async () => {
  const unary = await client.completions.create({
    model: MODEL_NAME, prompt: PROMPT, echo: true, max_tokens: 4, logprobs: 0, temperature: 0,
  });
  const stream = await client.completions.create({
    model: MODEL_NAME, prompt: PROMPT, echo: true, max_tokens: 4, logprobs: 0, temperature: 0,
    stream: true,
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.length >= 2);
  const first = chunks[0].choices[0];
  assert.equal(first.text, PROMPT);
  assert.equal(first.logprobs.token_logprobs[0], null);
  assert.equal(first.logprobs.tokens.length, unary.usage.prompt_tokens);
  const text = chunks.map((ch) => ch.choices[0]?.text ?? '').join('');
  assert.equal(text, unary.choices[0].text);
  const lps = chunks.flatMap((ch) => ch.choices[0]?.logprobs?.token_logprobs ?? []);
  assertClose(lps, unary.choices[0].logprobs.token_logprobs);
});

test('max_tokens 0 without echo, and on chat, is a 400', async () => {
  await assert.rejects(
    client.completions.create({ model: MODEL_NAME, prompt: PROMPT, max_tokens: 0 }),
    (e) => e.status === 400 && /max_tokens/.test(e.message));
  await assert.rejects(
    client.chat.completions.create({
      model: MODEL_NAME, messages: [{ role: 'user', content: 'hi' }], max_tokens: 0,
    }),
    (e) => e.status === 400);
  // The server is still up.
  const r = await client.completions.create({ model: MODEL_NAME, prompt: PROMPT, max_tokens: 2 });
  assert.equal(r.choices.length, 1);
});
