// `turbine bench` against `turbine run`: the numbers it reports agree with what was asked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, MODEL_NAME } from './server.mjs';
import { scrapeText } from './prometheus.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { assert.equal(await server.stop(), 0, server.log()); });

function bench(args) {
  return new Promise((resolve) => {
    execFile(process.env.TURBINE_BIN, ['bench', '--no-progress', ...args], { timeout: 120000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

for (const endpoint of ['completions', 'chat']) {
  test(`bench ${endpoint}: 24 requests at concurrency 6, exact output lengths`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turbine-bench-'));
    const json = path.join(dir, 'out.json');
    const csv = path.join(dir, 'out.csv');
    const svg = path.join(dir, 'out.svg');
    const r = await bench(['--url', server.base, '--model', MODEL_NAME, '--endpoint', endpoint,
      '-c', '6', '-n', '24', '--input-len', '32', '--output-len', '20',
      '--slo', 'ttft=10000,itl=10000', '--output-json', json, '--output-csv', csv, '--plot', svg]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const s = JSON.parse(fs.readFileSync(json, 'utf8'));
    const summary = s.summary ?? s;
    assert.equal(summary.errors, 0);
    assert.equal(summary.completed, 24);
    assert.equal(summary.output_tokens, 24 * 20);  // ignore_eos + max_tokens: exact lengths
    for (const k of ['ttft_ms', 'itl_ms', 'e2e_ms']) {
      for (const q of ['mean', 'p50', 'p90', 'p99']) assert.ok(summary[k][q] >= 0, `${k}.${q}`);
      assert.ok(summary[k].p99 >= summary[k].p50);
    }
    assert.ok(summary.output_tokens_per_s > 0);
    assert.ok(summary.requests_per_s > 0);
    // Generous SLOs: every request meets them, so goodput equals throughput.
    assert.ok(Math.abs(summary.goodput_requests_per_s - summary.requests_per_s) < 1e-6 * summary.requests_per_s + 1e-9);
    const rows = fs.readFileSync(csv, 'utf8').trim().split('\n');
    assert.equal(rows.length, 1 + 24);
    assert.match(fs.readFileSync(svg, 'utf8'), /^<svg|<\?xml/);
    // The server generated exactly what the bench asked for (ignore_eos + max_tokens).
    const metrics = await scrapeText(`${server.base}/metrics`);
    assert.match(metrics, /turbine_frontend_requests_total\{[^}]*status="success"[^}]*\} \d+/);
  });
}

test('bench against a port nobody listens on fails clearly', async () => {
  const r = await bench(['--url', 'http://127.0.0.1:1', '--model', MODEL_NAME, '-n', '2']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr + r.stdout, /127\.0\.0\.1:1/);
});

test('bench with a bad argument fails clearly', async () => {
  const r = await bench(['--url', server.base, '--slo', 'ttft=abc']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr + r.stdout, /slo/i);
});
