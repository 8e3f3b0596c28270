// A distributed Turbine for the e2e tests: real etcd and nats-server on random loopback ports with
// temp dirs, one `turbine frontend` and any number of `turbine worker`s. Everything started here
// is killed by stopAll() (call it in after()), and on process exit as a last resort.
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MODEL, MODEL_NAME } from './server.mjs';

const procs = new Set();
process.on('exit', () => { for (const p of procs) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });

export function which(bin) {
  for (const dir of ['/usr/bin', '/usr/sbin', '/usr/local/bin', ...(process.env.PATH || '').split(':')]) {
    const p = path.join(dir, bin);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(pred, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try { if (await pred()) return; } catch { /* not yet */ }
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

// Starts `bin args`; resolves once a log line matches `ready` (its match is returned).
function startProcess(name, bin, args, ready, env = {}) {
  const proc = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(proc);
  const p = { name, proc, log: '' };
  const onData = (d) => { p.log += d.toString(); };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  proc.on('exit', () => procs.delete(proc));
  p.exited = new Promise((r) => proc.once('exit', (code, sig) => r(code ?? sig)));
  p.ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${p.log}`)), 20000);
    const check = () => {
      const m = ready ? p.log.match(ready) : [''];
      if (m) { clearTimeout(timer); resolve(m); }
    };
    proc.stdout.on('data', check);
    proc.stderr.on('data', check);
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited (${code}):\n${p.log}`)); });
    check();
  });
  p.kill = async (sig = 'SIGTERM') => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(sig);
    await p.exited;
  };
  return p;
}

export class Cluster {
  constructor({ leaseTtl = 3 } = {}) {
    this.leaseTtl = leaseTtl;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turbine-dist-'));
    this.workers = [];
  }

  async startEtcd() {
    const bin = which('etcd');
    if (!this.etcdPort) { this.etcdPort = await freePort(); this.etcdPeerPort = await freePort(); }
    const client = `http://127.0.0.1:${this.etcdPort}`;
    const peer = `http://127.0.0.1:${this.etcdPeerPort}`;
    this.etcd = startProcess('etcd', bin, ['--data-dir', path.join(this.dir, 'etcd'),
      '--listen-client-urls', client, '--advertise-client-urls', client,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `default=${peer}`], null);
    this.etcdUrl = client;
    await waitFor(async () => (await fetch(`${client}/version`)).ok, 15000, 'etcd');
  }

  async startNats() {
    const bin = which('nats-server');
    if (!this.natsPort) this.natsPort = await freePort();  // a restart keeps the port
    this.nats = startProcess('nats', bin, ['-a', '127.0.0.1', '-p', String(this.natsPort),
      '-js', '-sd', path.join(this.dir, 'nats')], /Server is ready/);
    await this.nats.ready;
    this.natsUrl = `nats://127.0.0.1:${this.natsPort}`;
  }

  runtimeArgs() {
    return ['--discovery', 'etcd', '--etcd-endpoints', this.etcdUrl, '--nats-url', this.natsUrl,
      '--namespace', 'e2e', '--lease-ttl', String(this.leaseTtl)];
  }

  async startFrontend(extra = []) {
    this.frontend = startProcess('frontend', process.env.TURBINE_BIN,
      ['frontend', '--host', '127.0.0.1', '--port', '0', ...this.runtimeArgs(), ...extra],
      /serving on http:\/\/[^:]+:(\d+)/);
    const m = await this.frontend.ready;
    this.base = `http://127.0.0.1:${m[1]}`;
    return this.frontend;
  }

  // `model`/`name`: another model than stories260K (e.g. an encoder fixture folder).
  async startWorker(extra = [], { model = MODEL, name = MODEL_NAME } = {}) {
    const w = startProcess(`worker${this.workers.length}`, process.env.TURBINE_BIN,
      ['worker', '--model', model, '--served-model-name', name, '--advertise-host', '127.0.0.1',
        '--request-plane-host', '127.0.0.1', '--threads', '1', '--max-num-seqs', '16',
        ...this.runtimeArgs(), ...extra],
      /worker ([0-9a-f]+) serving/);
    const m = await w.ready;
    w.id = BigInt('0x' + m[1]).toString();  // decimal, as /health reports it
    this.workers.push(w);
    return w;
  }

  async health() {
    const r = await fetch(`${this.base}/health`);
    const text = await r.text();
    // instance ids are u64 lease ids, beyond JS numbers' precision: read their digits as text.
    const ids = [...text.matchAll(/"instance_id":(\d+)/g)].map((m) => m[1]).sort();
    return { status: r.status, body: JSON.parse(text), ids };
  }

  async healthIds() {
    return (await this.health()).ids;
  }

  async models() {
    return (await (await fetch(`${this.base}/v1/models`)).json()).data.map((m) => m.id);
  }

  async stopAll() {
    const all = [this.frontend, ...this.workers, this.etcd, this.nats].filter(Boolean);
    await Promise.all(all.map((p) => p.kill('SIGKILL')));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// One streaming completion; resolves with its text and finish reason. `onChunk` sees each delta.
export async function streamCompletion(base, prompt, maxTokens, onChunk = () => {}) {
  const r = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL_NAME, prompt, max_tokens: maxTokens, temperature: 0,
      ignore_eos: true, stream: true }),
  });
  if (!r.ok) return { status: r.status, error: await r.text() };
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let text = '';
  let finish = null;
  let error = null;
  let done = false;
  while (!done) {
    const { value, done: end } = await reader.read();
    if (end) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ')) continue;
      const data = ev.slice(6);
      if (data === '[DONE]') { done = true; break; }
      const j = JSON.parse(data);
      if (j.error) { error = j.error; continue; }
      const c = j.choices[0];
      text += c.text;
      if (c.text) onChunk(c.text);
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { status: r.status, text, finish, error };
}

export function haveBinaries() {
  return which('etcd') && which('nats-server');
}

// A suite's `skip` option when a dependency may be missing (`missing`: why, or null). On a
// developer's machine the suite is skipped with the reason; under CI=true, where
// scripts/install-deps installed everything, it is skipped too but one test fails with the reason,
// so a missing dependency never passes for a green run.
export function skipUnlessInstalled(missing) {
  if (!missing) return false;
  if (process.env.CI === 'true') {
    test(`dependencies are installed (${missing})`, () => {
      throw new Error(`${missing}: required under CI=true`);
    });
  }
  return missing;
}

export { spawnSync };
