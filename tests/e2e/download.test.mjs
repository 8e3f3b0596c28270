// `turbine download` against tests/tools/fake_hub.py on 127.0.0.1 (a stand-in for the Hub, as the
// hub client's unit tests use): resume after an interrupted run, --local-dir, clear failures offline,
// with the Hub unreachable, and without (or with a wrong) token for a gated model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const fakeHub = path.resolve(here, '../tools/fake_hub.py');
const bin = process.env.TURBINE_BIN;
const REPO = 'org/tiny';
const WEIGHTS = crypto.randomBytes(3 << 20);  // > 1 MiB: served as an LFS file through the "CDN"

function tmp() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'turbine-download-'));
}

function makeRepo(root) {
  const dir = path.join(root, REPO);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'] }));
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify({ model: { type: 'BPE', vocab: {}, merges: [] } }));
  fs.writeFileSync(path.join(dir, 'model.safetensors'), WEIGHTS);
  fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), 'never fetched');
}

// fake_hub.py on a free port until stop().
async function startHub(root, extra = []) {
  const log = path.join(root, 'requests.jsonl');
  const p = spawn('python3', [fakeHub, '--root', path.join(root, 'repos'), '--log', log, ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/(\d+)\s*\n/);
      if (m) resolve(Number(m[1]));
    });
    p.on('exit', (c) => reject(new Error(`fake_hub.py exited ${c}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []),
    stop: () => new Promise((r) => { p.once('exit', r); p.kill('SIGTERM'); }),
  };
}

function download(args, env = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(HF_|HUGGING)/.test(k)));
  const r = spawnSync(bin, ['download', ...args, '--no-progress'], {
    encoding: 'utf8', env: { ...clean, HOME: os.tmpdir(), HF_TOKEN_PATH: '/nonexistent/token', ...env }, timeout: 60000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function setup() {
  const root = tmp();
  makeRepo(path.join(root, 'repos'));
  return root;
}

test('downloads into the cache, and a second run after an interrupted one resumes with a Range request', async () => {
  const root = setup();
  const cache = path.join(root, 'cache');
  // Every attempt of the first run is cut after 100 kB (1 try + 3 retries), so it fails part-way.
  const hub = await startHub(root, ['--drop-after', '100000', '--drop-count', '4']);
  try {
    const first = download([REPO, '--endpoint', hub.url, '--cache-dir', cache]);
    assert.equal(first.code, 1, first.err);
    assert.match(first.err, /turbine download: /);
    const incomplete = fs.readdirSync(path.join(cache, 'models--org--tiny/blobs')).filter((f) => f.endsWith('.incomplete'));
    assert.equal(incomplete.length, 1);
    const partial = fs.statSync(path.join(cache, 'models--org--tiny/blobs', incomplete[0])).size;
    assert.ok(partial >= 100000 && partial < WEIGHTS.length, `partial ${partial}`);
    const before = hub.requests().length;
    const second = download([REPO, '--endpoint', hub.url, '--cache-dir', cache]);
    assert.equal(second.code, 0, second.err);
    const snapshot = second.out.trim();
    assert.match(snapshot, /models--org--tiny\/snapshots\/[0-9a-f]{40}$/);
    assert.ok(WEIGHTS.equals(fs.readFileSync(path.join(snapshot, 'model.safetensors'))));
    assert.ok(fs.existsSync(path.join(snapshot, 'tokenizer.json')));
    assert.ok(!fs.existsSync(path.join(snapshot, 'pytorch_model.bin')), 'a weight format turbine cannot load was fetched');
    const resumed = hub.requests().slice(before).filter((r) => r.method === 'GET' && r.range);
    assert.ok(resumed.some((r) => r.range === `bytes=${partial}-`), JSON.stringify(resumed));
    // A third run needs no file transfer at all.
    const mark = hub.requests().length;
    assert.equal(download([REPO, '--endpoint', hub.url, '--cache-dir', cache]).code, 0);
    assert.ok(hub.requests().slice(mark).every((r) => r.method !== 'GET' || r.path.startsWith('/api/')));
  } finally {
    await hub.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('--local-dir puts the files in a plain folder that --model can load, keeping partial blobs beside it', async () => {
  const root = setup();
  const hub = await startHub(root);
  try {
    const dir = path.join(root, 'data/Tiny');
    const r = download([REPO, '--endpoint', hub.url, '--local-dir', dir]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), dir);
    assert.ok(WEIGHTS.equals(fs.readFileSync(path.join(dir, 'model.safetensors'))));
    assert.ok(fs.statSync(path.join(dir, 'config.json')).isFile());
    assert.ok(!fs.lstatSync(path.join(dir, 'config.json')).isSymbolicLink());
    assert.ok(fs.existsSync(path.join(dir, '.cache/huggingface/hub/models--org--tiny')));
    // Again: nothing changes, no file is fetched.
    const mark = hub.requests().length;
    assert.equal(download([REPO, '--endpoint', hub.url, '--local-dir', dir]).code, 0);
    assert.ok(hub.requests().slice(mark).every((q) => q.method !== 'GET' || q.path.startsWith('/api/')));
  } finally {
    await hub.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('offline or with the Hub unreachable it fails clearly, unless the cache has the model', async () => {
  const root = setup();
  const cache = path.join(root, 'cache');
  try {
    const offline = download([REPO, '--cache-dir', cache, '--offline']);
    assert.equal(offline.code, 1);
    assert.match(offline.err, /offline mode .* no complete copy of 'org\/tiny'/);
    const envOffline = download([REPO, '--cache-dir', cache], { HF_HUB_OFFLINE: '1' });
    assert.equal(envOffline.code, 1);
    assert.match(envOffline.err, /offline mode/);
    const closed = await new Promise((resolve) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    });
    const down = download([REPO, '--cache-dir', cache], { HF_ENDPOINT: `http://127.0.0.1:${closed}` });
    assert.equal(down.code, 1);
    assert.match(down.err, /cannot reach http:\/\/127\.0\.0\.1:\d+/);
    // With the model cached, offline works and prints the snapshot.
    const hub = await startHub(root);
    try {
      assert.equal(download([REPO, '--endpoint', hub.url, '--cache-dir', cache]).code, 0);
    } finally {
      await hub.stop();
    }
    const cached = download([REPO, '--cache-dir', cache, '--offline']);
    assert.equal(cached.code, 0, cached.err);
    assert.match(cached.out, /snapshots\/[0-9a-f]{40}/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a gated model: no token or a wrong one fails with a hint; the right token (flag or HF_TOKEN) works', async () => {
  const root = setup();
  const hub = await startHub(root, ['--token', 'hf_right']);
  try {
    const cache = path.join(root, 'cache');
    const none = download([REPO, '--endpoint', hub.url, '--cache-dir', cache]);
    assert.equal(none.code, 1);
    assert.match(none.err, /not found or gated/);
    assert.match(none.err, /no token: set HF_TOKEN or pass --token/);
    const wrong = download([REPO, '--endpoint', hub.url, '--cache-dir', cache, '--token', 'hf_wrong']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /the token was sent/);
    assert.ok(hub.requests().some((r) => r.authorization === 'Bearer hf_wrong'));
    assert.equal(download([REPO, '--endpoint', hub.url, '--cache-dir', cache, '--token', 'hf_right']).code, 0);
    const env = download([REPO, '--endpoint', hub.url, '--cache-dir', path.join(root, 'c2')], { HF_TOKEN: 'hf_right' });
    assert.equal(env.code, 0, env.err);
  } finally {
    await hub.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a bad repo id is a usage error', () => {
  const r = download(['not-a-repo-id']);
  assert.equal(r.code, 2);
  assert.match(r.err, /not a Hub repo id/);
});
