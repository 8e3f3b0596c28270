// The HTTP contract and the single-process faults of issue 18, through real clients: the official
// `openai` client and Python's urllib for over-limit uploads (item 1), raw sockets for framing,
// Host, HEAD, absolute-form targets and the connection cap (13, 17, 18), unauthenticated uploads
// that must not cost memory (10), CORS (5), empty keys (14), the cancellation counter through a
// strict Prometheus parser (7) and a model file truncated under a running server (12).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { MODEL, MODEL_NAME, startServer } from './server.mjs';
import { scrape, value } from './prometheus.mjs';

const KEY = 'sekret';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Writes `data` (string or Buffer chunks) to a fresh connection and collects what comes back
// until the server closes, or `timeoutMs` passes. `writeError` tells whether a write failed (the
// server reset the connection under the client).
function exchange(port, chunks, timeoutMs = 10000) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    let writeError = null;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data, writeError });
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('connect', async () => {
      for (const c of [].concat(chunks)) {
        if (!sock.write(c)) await new Promise((r) => sock.once('drain', r));
      }
    });
    sock.on('data', (d) => { data += d.toString('latin1'); });
    sock.on('error', (e) => { writeError = e; finish(); });
    sock.on('close', finish);
  });
}

function rssKiB(pid, field) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(new RegExp(`${field}:\\s+(\\d+) kB`))[1]);
}

function jsonBody(raw) {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
}

// `turbine run` with a model of our choosing (server.mjs always serves the shared one).
function startTurbine(args, env = {}) {
  const proc = spawn(process.env.TURBINE_BIN, ['run', '--host', '127.0.0.1', '--port', '0', ...args],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const exited = new Promise((r) => proc.once('exit', (code, sig) => r(code ?? sig)));
  const port = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('did not start:\n' + log)), 30000);
    const onData = (d) => {
      log += d.toString();
      const m = log.match(/serving .* on http:\/\/[^:]+:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited (${code}):\n${log}`)); });
  });
  return { proc, exited, port, log: () => log };
}

describe('a server with an API key and CORS', () => {
  let server;
  before(async () => {
    server = await startServer(['--api-key', KEY, '--allowed-origins', 'https://app.example']);
  });
  after(async () => { await server?.stop(); });

  const body20MB = () => JSON.stringify({ model: MODEL_NAME, prompt: 'a'.repeat(20 * 1024 * 1024), max_tokens: 1 });

  test('item 1: the openai client reads the 413 of a 20 MB body and does not retry the upload', async () => {
    let calls = 0;
    const client = new OpenAI({
      baseURL: `${server.base}/v1`, apiKey: KEY, maxRetries: 2,
      fetch: (url, init) => { calls += 1; return fetch(url, init); },
    });
    await assert.rejects(
      client.completions.create({ model: MODEL_NAME, prompt: 'a'.repeat(20 * 1024 * 1024), max_tokens: 1 }),
      (e) => {
        assert.equal(e.status, 413, `${e.constructor.name}: ${e.message}`);
        assert.match(e.message, /exceeds/);
        return true;
      });
    assert.equal(calls, 1, 'the client retried the upload');
  });

  test("item 1: Python's urllib reads the 413 of a 20 MB body (no broken pipe)", () => {
    const script = `
import json, sys, urllib.request, urllib.error
body = json.dumps({"model": "${MODEL_NAME}", "prompt": "a" * (20 * 1024 * 1024), "max_tokens": 1}).encode()
req = urllib.request.Request(sys.argv[1] + "/v1/completions", data=body,
    headers={"Content-Type": "application/json", "Authorization": "Bearer ${KEY}"})
try:
    urllib.request.urlopen(req, timeout=60)
    print(json.dumps({"status": 200}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read().decode()}))
except Exception as e:
    print(json.dumps({"error": repr(e)}))
`;
    const r = spawnSync('python3', ['-c', script, server.base], { encoding: 'utf8', timeout: 90000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status, 413, JSON.stringify(out));
    assert.equal(JSON.parse(out.body).error.type, 'invalid_request_error');
  });

  test('item 10: 24 unauthenticated 16 MB uploads get 401 without growing RSS', async () => {
    // Warm up the path once, then measure the peak RSS around the uploads.
    await exchange(server.port, 'GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const pid = server.proc.pid;
    const before = rssKiB(pid, 'VmHWM');
    const size = 16 * 1024 * 1024 - 4096;  // under the body limit: only the key is wrong
    const body = Buffer.alloc(size, 'a');
    const head = `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${size}\r\n\r\n`;
    const results = await Promise.all(Array.from({ length: 24 }, () => exchange(server.port, [head, body], 60000)));
    for (const r of results) {
      assert.match(r.data, /^HTTP\/1\.1 401 /, r.data.slice(0, 200));
      assert.equal(r.writeError, null, `the upload was reset: ${r.writeError}`);
      assert.match(r.data, /WWW-Authenticate: Bearer/);
    }
    const grown = rssKiB(pid, 'VmHWM') - before;
    console.log(`peak RSS grew by ${grown} KiB over 24 unauthenticated 16 MB uploads`);
    assert.ok(grown < 16 * 1024, `peak RSS grew by ${grown} KiB`);
    // A 100-continue client gets the 401 instead of the go-ahead.
    const c = await exchange(server.port,
      `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\nExpect: 100-continue\r\n\r\n`, 3000);
    assert.match(c.data, /^HTTP\/1\.1 401 /);
    assert.doesNotMatch(c.data, /100 Continue/);
  });

  test('item 18: the Bearer scheme is case-insensitive and x-api-key works', async () => {
    for (const headers of [{ authorization: `bearer ${KEY}` }, { authorization: `BEARER  ${KEY}` },
      { 'x-api-key': KEY }]) {
      const r = await fetch(`${server.base}/v1/models`, { headers });
      assert.equal(r.status, 200, JSON.stringify(headers));
    }
    for (const headers of [{ authorization: `Basic ${KEY}` }, { authorization: `Bearer ${KEY}x` }, {}]) {
      const r = await fetch(`${server.base}/v1/models`, { headers });
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal((await r.json()).error.type, 'authentication_error');
    }
    const wrong = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'nope', maxRetries: 0 });
    await assert.rejects(wrong.models.list(), (e) => e.status === 401);
    assert.equal((await fetch(`${server.base}/health`)).status, 200, '/health stays open');
  });

  test('item 5: CORS preflight and the actual request', async () => {
    const pre = await fetch(`${server.base}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
    assert.match(pre.headers.get('access-control-allow-headers'), /authorization/);
    const bad = await fetch(`${server.base}/v1/chat/completions`, {
      method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(bad.status, 403);
    assert.equal(bad.headers.get('access-control-allow-origin'), null);
    const r = await fetch(`${server.base}/v1/models`, {
      headers: { origin: 'https://app.example', authorization: `Bearer ${KEY}` } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example');
  });

  test('item 13: a Transfer-Encoding not ending in chunked is 400 and nothing is smuggled', async () => {
    for (const te of ['chunked, gzip', 'gzip', 'identity', 'xchunked']) {
      const r = await exchange(server.port,
        `POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nTransfer-Encoding: ${te}\r\n\r\n` +
        'GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' + KEY + '\r\n\r\n', 5000);
      assert.match(r.data, /^HTTP\/1\.1 400 /, `${te}: ${r.data.slice(0, 120)}`);
      assert.equal(r.data.match(/HTTP\/1\.1 /g).length, 1, `${te}: a second response was served`);
      assert.doesNotMatch(r.data, new RegExp(MODEL_NAME), te);
      assert.equal(jsonBody(r.data).error.type, 'invalid_request_error');
    }
  });

  test('item 18: Host, HEAD and absolute-form targets', async () => {
    let r = await exchange(server.port, 'GET /health HTTP/1.1\r\n\r\n', 3000);
    assert.match(r.data, /^HTTP\/1\.1 400 /);
    r = await exchange(server.port, 'GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 3000);
    assert.match(r.data, /^HTTP\/1\.1 400 /);
    r = await exchange(server.port, 'HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 3000);
    assert.match(r.data, /^HTTP\/1\.1 200 /);
    assert.match(r.data, /Content-Length: [1-9]/);
    assert.ok(r.data.endsWith('\r\n\r\n'), `HEAD sent a body: ${JSON.stringify(r.data)}`);
    r = await exchange(server.port, `GET http://127.0.0.1:${server.port}/v1/models HTTP/1.1\r\n` +
      `Host: 127.0.0.1:${server.port}\r\nAuthorization: Bearer ${KEY}\r\nConnection: close\r\n\r\n`, 3000);
    assert.match(r.data, /^HTTP\/1\.1 200 /);
    assert.equal(jsonBody(r.data).data[0].id, MODEL_NAME);
  });

  test('item 18: an out-of-range number is quoted as sent', async () => {
    const client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: KEY, maxRetries: 0 });
    await assert.rejects(
      client.completions.create({ model: MODEL_NAME, prompt: 'hi', max_tokens: 1, temperature: 1e308 }),
      (e) => {
        assert.equal(e.status, 400);
        assert.match(e.message, /got 1e\+308/);
        assert.doesNotMatch(e.message, /9999/);
        return true;
      });
  });

  test('item 7: cancellations are a counter that stop strings do not move', async () => {
    const auth = { headers: { authorization: `Bearer ${KEY}` } };
    const metrics = () => scrape(`${server.base}/metrics`, auth);
    const cancelled = async () => value(await metrics(), 'turbine_engine_cancelled_requests_total');
    const parsed = await metrics();  // parsePrometheus: every *_total is a counter
    assert.equal(parsed.families.get('turbine_engine_cancelled_requests_total').type, 'counter');
    const before = await cancelled();
    const client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: KEY, maxRetries: 0 });
    for (let i = 0; i < 3; ++i) {
      const r = await client.completions.create({
        model: MODEL_NAME, prompt: `Once upon a time ${i}`, max_tokens: 64, temperature: 0, stop: [' '] });
      assert.equal(r.choices[0].finish_reason, 'stop');
    }
    // The stop reached the engine before this request finished (one engine thread, FIFO).
    await client.completions.create({ model: MODEL_NAME, prompt: 'x', max_tokens: 2 });
    assert.equal(await cancelled(), before, 'a stop-string finish counted as a cancellation');
    // A client that goes away is a cancellation.
    const ac = new AbortController();
    const stream = await client.completions.create(
      { model: MODEL_NAME, prompt: 'Once', max_tokens: 200, ignore_eos: true, stream: true },
      { signal: ac.signal });
    try {
      for await (const chunk of stream) { if (chunk.choices[0]?.text) ac.abort(); }
    } catch { /* aborted */ }
    const deadline = Date.now() + 10000;
    while (await cancelled() < before + 1 && Date.now() < deadline) await sleep(50);
    assert.equal(await cancelled(), before + 1);
  });
});

describe('a server with a connection cap', () => {
  let server;
  before(async () => { server = await startServer(['--max-connections', '4']); });
  after(async () => { await server?.stop(); });

  test('item 17: connections past the cap get 503, logged once, and the server recovers', async () => {
    const held = [];
    for (let i = 0; i < 4; ++i) {
      const s = net.connect(server.port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      held.push(s);
    }
    await sleep(200);
    const refused = await Promise.all(Array.from({ length: 30 }, () =>
      exchange(server.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n', 5000)));
    for (const r of refused) {
      assert.match(r.data, /^HTTP\/1\.1 503 /, r.data.slice(0, 100));
      assert.match(r.data, /Retry-After: 1/);
    }
    const lines = server.log().split('\n').filter((l) => /refused \d+ connections/.test(l));
    assert.ok(lines.length >= 1 && lines.length <= 2, `refusals logged ${lines.length} times`);
    for (const s of held) s.destroy();
    await sleep(300);
    const ok = await exchange(server.port, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 5000);
    assert.match(ok.data, /^HTTP\/1\.1 200 /);
  });
});

describe('a server out of descriptors', () => {
  test('item 17: accept failures back off and are logged rarely; the server recovers', async (t) => {
    const prlimit = ['/usr/bin/prlimit', '/bin/prlimit'].find((p) => fs.existsSync(p));
    if (!prlimit) {
      if (process.env.CI === 'true') assert.fail('prlimit (util-linux) is missing');
      t.skip('prlimit (util-linux) is missing');
      return;
    }
    // 64 descriptors and a cap above them: accept(2) itself fails with EMFILE.
    const proc = spawn(prlimit, ['--nofile=64:64', process.env.TURBINE_BIN, 'run', '--model', MODEL,
      '--served-model-name', MODEL_NAME, '--host', '127.0.0.1', '--port', '0', '--threads', '1',
      '--max-connections', '1000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    proc.stdout.on('data', (d) => { log += d; });
    proc.stderr.on('data', (d) => { log += d; });
    const exited = new Promise((r) => proc.once('exit', (code) => r(code)));
    try {
      let port = 0;
      for (let i = 0; i < 300 && !port; ++i) {
        const m = log.match(/serving .* on http:\/\/[^:]+:(\d+)/);
        if (m) port = Number(m[1]);
        else await sleep(100);
      }
      assert.ok(port, log);
      const held = [];
      for (let i = 0; i < 100; ++i) {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => {});
        held.push(s);
      }
      await sleep(3000);
      const lines = log.split('\n').filter((l) => /accept failed/.test(l));
      assert.ok(lines.length >= 1 && lines.length <= 2, `accept failures logged ${lines.length} times:\n${log}`);
      for (const s of held) s.destroy();
      await sleep(1500);  // the back-off is at most 1 s
      const ok = await exchange(port, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 5000);
      assert.match(ok.data, /^HTTP\/1\.1 200 /);
    } finally {
      proc.kill('SIGTERM');
      await exited;
    }
  });
});

describe('start-up', () => {
  test('item 14: an empty API key refuses to start; the log says whether a key is required', async () => {
    for (const [args, env] of [[['--api-key', ''], {}], [[], { TURBINE_API_KEY: '' }]]) {
      const r = spawnSync(process.env.TURBINE_BIN, ['run', '--model', MODEL, '--port', '0', ...args],
        { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30000 });
      assert.equal(r.status, 2, `${JSON.stringify(args)} ${JSON.stringify(env)}: ${r.stderr}${r.stdout}`);
      assert.match(r.stderr + r.stdout, /API key is empty/);
    }
    const open = await startServer([]);
    try {
      assert.match(open.log(), /no API key/);
    } finally { await open.stop(); }
    const locked = await startServer(['--api-key', KEY]);
    try {
      assert.match(locked.log(), /API key required/);
    } finally { await locked.stop(); }
  });
});

describe('item 12: a model file changed on disk', () => {
  let dir;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turbine-mmap-')); });
  after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  const complete = (port) => fetch(`http://127.0.0.1:${port}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 8, temperature: 0 }),
  });

  test('truncated under a mapped server: a clear error naming the file and exit 74', async () => {
    const file = path.join(dir, 'mapped.gguf');
    fs.copyFileSync(MODEL, file);
    const s = startTurbine(['--model', file, '--served-model-name', MODEL_NAME]);
    const port = await s.port;
    assert.equal((await complete(port)).status, 200);
    fs.truncateSync(file, 4096);  // what `cp new.gguf model.gguf` does first
    await complete(port).catch(() => null);  // the server dies under it
    const code = await Promise.race([s.exited, sleep(20000).then(() => 'still running')]);
    if (code === 'still running') s.proc.kill('SIGKILL');
    assert.equal(code, 74, s.log());
    assert.match(s.log(), /the model file .*mapped\.gguf changed on disk/);
    assert.doesNotMatch(s.log(), /Bus error|backtrace/i);
  });

  test('--no-mmap: the same truncation changes nothing', async () => {
    const file = path.join(dir, 'read.gguf');
    fs.copyFileSync(MODEL, file);
    const s = startTurbine(['--model', file, '--served-model-name', MODEL_NAME, '--no-mmap']);
    try {
      const port = await s.port;
      const before = await (await complete(port)).json();
      fs.truncateSync(file, 4096);
      const r = await complete(port);
      assert.equal(r.status, 200);
      assert.equal((await r.json()).choices[0].text, before.choices[0].text);
    } finally {
      s.proc.kill('SIGTERM');
      await s.exited;
    }
  });
});
