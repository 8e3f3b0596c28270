// Prefix caching through the OpenAI client: a repeated prompt reports cached prompt tokens and
// gives the same greedy completion; /metrics shows the KV cache and the prefix-cache hits.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, MODEL_NAME } from './server.mjs';
import { scrapeText } from './prometheus.mjs';

let server;
let client;
before(async () => {
  server = await startServer(['--block-size', '4']);
  client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'unused' });
});
after(async () => { assert.equal(await server.stop(), 0, server.log()); });

test('a repeated completion reports cached prompt tokens', async () => {
  const req = {
    model: MODEL_NAME,
    prompt: 'Once upon a time there was a little girl who lived in a small house near the forest.',
    max_tokens: 8,
    temperature: 0,
  };
  const first = await client.completions.create(req);
  const second = await client.completions.create(req);
  assert.ok(first.usage.prompt_tokens >= 8, JSON.stringify(first.usage));
  assert.equal(second.usage.prompt_tokens, first.usage.prompt_tokens);
  const cached = second.usage.prompt_tokens_details?.cached_tokens;
  assert.ok(cached > 0, JSON.stringify(second.usage));
  assert.ok(cached < second.usage.prompt_tokens, JSON.stringify(second.usage));
  assert.equal(second.choices[0].text, first.choices[0].text);

  const metrics = await scrapeText(`${server.base}/metrics`);
  const value = (name) => {
    const m = metrics.match(new RegExp(`^${name}\\{[^}]*\\} ([0-9.e+-]+)$`, 'm'));
    assert.ok(m, `${name} missing from /metrics`);
    return Number(m[1]);
  };
  assert.ok(value('turbine_engine_kv_total_blocks') > 0);
  assert.ok(value('turbine_engine_prefix_cache_hit_tokens_total') >= cached);
  assert.ok(value('turbine_engine_prefix_cache_hit_rate') > 0);
});
