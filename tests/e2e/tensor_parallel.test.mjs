// Tensor parallelism through the real server (issue 22): `turbine run --tensor-parallel-size 2` on
// the CPU backend gives the llama2.c golden greedy text and the same texts as TP 1 under concurrent
// requests; a size the model cannot be split into fails at start with a clear message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, SHARED, MODEL, MODEL_NAME } from './server.mjs';

let tp1, tp2;
before(async () => {
  tp1 = await startServer(['--threads', '2']);
  tp2 = await startServer(['--threads', '2', '--tensor-parallel-size', '2']);
});
after(async () => {
  assert.equal(await tp1.stop(), 0, tp1.log());
  assert.equal(await tp2.stop(), 0, tp2.log());
});

async function complete(server, body) {
  const res = await fetch(`${server.base}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL_NAME, temperature: 0, ...body }),
  });
  const json = await res.json();
  assert.equal(res.status, 200, JSON.stringify(json));
  return json.choices[0].text;
}

test('TP 2 serves the llama2.c golden greedy output', async () => {
  assert.match(tp2.log(), /cpu-tp2 backend/);
  const golden = fs.readFileSync(path.join(SHARED, 'models/stories260K/stories260K_greedy_golden.txt'), 'utf8');
  assert.equal(await complete(tp2, { prompt: '', max_tokens: 256 }) + '\n', golden);
});

test('TP 2 gives the texts of TP 1 for concurrent requests', async () => {
  const prompts = ['Once upon a time', 'The little dog', 'Lily and Ben went to the park', 'One day', 'Tom had a'];
  const bodies = prompts.map((p, i) => ({ prompt: p, max_tokens: 24 + 8 * i }));
  const [a, b] = await Promise.all([tp1, tp2].map((s) => Promise.all(bodies.map((x) => complete(s, x)))));
  assert.deepEqual(b, a);
});

test('a tensor-parallel size the model cannot be split into fails at start, saying why', () => {
  const r = spawnSync(process.env.TURBINE_BIN, ['run', '--model', MODEL, '--port', '0', '--tensor-parallel-size', '3'],
    { encoding: 'utf8', timeout: 30000 });
  assert.notEqual(r.status, 0);
  assert.match(r.stdout + r.stderr, /tensor parallel size 3: the model's 8 attention heads do not divide evenly/);
});
