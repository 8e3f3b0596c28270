// 32 concurrent streams; a client that goes away cancels its generation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import OpenAI from 'openai';
import { startServer, metric, MODEL_NAME } from './server.mjs';

let server;
let client;
before(async () => {
  server = await startServer(['--max-num-seqs', '8']);
  client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { assert.equal(await server.stop(), 0, server.log()); });

const prompts = ['Once upon a time', 'The cat', 'Lily and Tom', 'One day', 'Tim had a ball', 'The sun'];

test('32 concurrent streaming requests all complete with the right text', async () => {
  const expected = new Map();
  for (const p of prompts) {
    const r = await client.completions.create({ model: MODEL_NAME, prompt: p, max_tokens: 48, temperature: 0 });
    expected.set(p, r.choices[0].text);
  }
  const running = [];
  for (let i = 0; i < 32; i++) {
    const p = prompts[i % prompts.length];
    running.push((async () => {
      const stream = await client.completions.create({
        model: MODEL_NAME, prompt: p, max_tokens: 48, temperature: 0, stream: true,
      });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
      return [p, text];
    })());
  }
  const results = await Promise.all(running);
  assert.equal(results.length, 32);
  for (const [p, text] of results) assert.equal(text, expected.get(p), `prompt ${p}`);
});

test('a client that disconnects mid-stream cancels its generation', async () => {
  const before = await metric(server.base, 'turbine_frontend_disconnected_clients');
  const cancelledBefore = await metric(server.base, 'turbine_engine_cancelled_requests_total');
  await new Promise((resolve, reject) => {
    const req = http.request(`${server.base}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
    }, (res) => {
      assert.equal(res.statusCode, 200);
      let events = 0;
      res.on('data', (d) => {
        events += (d.toString().match(/data: /g) || []).length;
        if (events >= 3) { req.destroy(); resolve(); }
      });
      res.on('error', () => {});
    });
    req.on('error', () => {});
    // ignore_eos + a large budget: without cancellation this would run for a long time.
    req.end(JSON.stringify({ model: MODEL_NAME, prompt: 'Once', max_tokens: 400, ignore_eos: true, stream: true, temperature: 0 }));
    setTimeout(() => reject(new Error('no stream data')), 10000);
  });
  let after = before;
  let cancelled = cancelledBefore;
  for (let i = 0; i < 50 && (after <= before || cancelled <= cancelledBefore); i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await metric(server.base, 'turbine_frontend_disconnected_clients');
    cancelled = await metric(server.base, 'turbine_engine_cancelled_requests_total');
  }
  assert.equal(after, before + 1);
  assert.equal(cancelled, cancelledBefore + 1);
  // Nothing is left running.
  assert.equal(await metric(server.base, 'turbine_engine_running_requests'), 0);
  const r = await client.completions.create({ model: MODEL_NAME, prompt: 'The cat', max_tokens: 4, temperature: 0 });
  assert.equal(r.usage.completion_tokens, 4);
});
