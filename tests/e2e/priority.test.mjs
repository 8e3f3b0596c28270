// Priority classes (issue 29) through the official `openai` client: vLLM's `priority` body field
// is a 400 unless the server runs --scheduling-policy priority, and is served with it, also
// through the router of in-process workers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, MODEL_NAME } from './server.mjs';

let fcfs;        // the default policy
let routedFcfs;  // the default policy behind the router (two workers)
let prio;        // --scheduling-policy priority behind the router (two workers)

const clientOf = (s) => new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'unused', maxRetries: 0 });

before(async () => {
  [fcfs, routedFcfs, prio] = await Promise.all([
    startServer(),
    startServer(['--workers', '2']),
    startServer(['--workers', '2', '--scheduling-policy', 'priority']),
  ]);
});
after(async () => {
  for (const s of [fcfs, routedFcfs, prio]) if (s) assert.equal(await s.stop(), 0, s.log());
});

const chat = (priority, extra = {}) => ({
  model: MODEL_NAME, messages: [{ role: 'user', content: 'Tell me a story.' }],
  max_tokens: 8, temperature: 0, priority, ...extra,
});

test('without the priority policy a priority is a 400 naming it; 0 is served', async () => {
  for (const server of [fcfs, routedFcfs]) {
    const client = clientOf(server);
    await assert.rejects(client.chat.completions.create(chat(1)), (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, String(err));
      assert.equal(err.status, 400);
      assert.equal(err.param, 'priority');
      assert.equal(err.type, 'invalid_request_error');
      assert.match(err.message, /--scheduling-policy priority/);
      return true;
    });
    await assert.rejects(
      client.completions.create({ model: MODEL_NAME, prompt: 'x', max_tokens: 2, priority: -1 }),
      (err) => err instanceof OpenAI.BadRequestError && err.param === 'priority');
    const r = await client.chat.completions.create(chat(0));
    assert.ok(r.choices[0].message.content.length > 0);
  }
});

test('a priority that is not an integer is a 400 on every server', async () => {
  for (const server of [fcfs, prio]) {
    for (const bad of ['high', 1.5, true]) {
      await assert.rejects(clientOf(server).chat.completions.create(chat(bad)),
        (err) => err instanceof OpenAI.BadRequestError && err.param === 'priority');
    }
  }
});

test('with --scheduling-policy priority every class is served, unary and streamed', async () => {
  const client = clientOf(prio);
  const baseline = await client.chat.completions.create(chat(0));
  const texts = await Promise.all([-3, 0, 2, 7].map(async (p) =>
    (await client.chat.completions.create(chat(p))).choices[0].message.content));
  for (const t of texts) assert.equal(t, baseline.choices[0].message.content);  // greedy
  const stream = await client.chat.completions.create(chat(4, { stream: true }));
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(text, baseline.choices[0].message.content);
  const c = await client.completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 4,
    temperature: 0, priority: 9 });
  assert.ok(c.choices[0].text.length > 0);
});
