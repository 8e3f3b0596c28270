// API keys, health endpoints, metrics, graceful shutdown, version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import OpenAI from 'openai';
import { startServer, MODEL_NAME } from './server.mjs';
import { scrapeText } from './prometheus.mjs';

test('--api-key guards /v1/* and leaves /health and /live open', async () => {
  const server = await startServer(['--api-key', 'sekret']);
  try {
    const bad = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(bad.models.list(), (err) => {
      assert.ok(err instanceof OpenAI.AuthenticationError, String(err));
      assert.equal(err.status, 401);
      return true;
    });
    const none = await fetch(`${server.base}/v1/models`);
    assert.equal(none.status, 401);
    assert.equal(typeof (await none.json()).error.message, 'string');
    const good = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'sekret', maxRetries: 0 });
    assert.equal((await good.models.list()).data[0].id, MODEL_NAME);
    assert.equal((await fetch(`${server.base}/health`)).status, 200);
    const live = await fetch(`${server.base}/live`);
    assert.equal(live.status, 200);
    const metrics = await scrapeText(`${server.base}/metrics`);
    assert.match(metrics, /# TYPE turbine_frontend_time_to_first_token_seconds histogram/);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('TURBINE_API_KEY works like --api-key', async () => {
  const server = await startServer([], { TURBINE_API_KEY: 'envkey' });
  try {
    assert.equal((await fetch(`${server.base}/v1/models`)).status, 401);
    const r = await fetch(`${server.base}/v1/models`, { headers: { authorization: 'Bearer envkey' } });
    assert.equal(r.status, 200);
  } finally {
    await server.stop();
  }
});

test('SIGTERM lets an in-flight request finish, then exits 0', async () => {
  const server = await startServer();
  const client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'x', maxRetries: 0 });
  const pending = client.completions.create({
    model: MODEL_NAME, prompt: 'Once', max_tokens: 200, ignore_eos: true, temperature: 0, stream: true,
  });
  const stream = await pending;
  let text = '';
  let n = 0;
  let finish = null;
  let stopped = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.text ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    if (++n === 2) stopped = server.stop();
  }
  assert.equal(finish, 'length');
  assert.ok(text.length > 100);
  assert.equal(await stopped, 0, server.log());
  assert.match(server.log(), /stopped/);
});

test('turbine --version', () => {
  const out = execFileSync(process.env.TURBINE_BIN, ['--version']).toString();
  assert.match(out, /^turbine \d+\.\d+\.\d+/);
});

test('a missing model file is a clear error, not a crash', () => {
  let err;
  try {
    execFileSync(process.env.TURBINE_BIN, ['run', '--model', '/nonexistent/model.gguf', '--port', '0'], { stdio: 'pipe' });
  } catch (e) { err = e; }
  assert.ok(err, 'expected a non-zero exit');
  assert.equal(err.status, 2);
  assert.match(err.stderr.toString() + err.stdout.toString(), /nonexistent\/model\.gguf/);
});
