// A short fault soak of the distributed runtime (issue 18): real etcd and nats-server on loopback,
// one frontend, three workers on stories260K, and steady streaming load while, one after another,
// a worker is killed (kill -9, then replaced as an orchestrator would), a worker is SIGSTOPped for
// 8 s, NATS is restarted and etcd is restarted. For every phase it reports the requests that
// started in it and of those the ones that failed, the longest pause a stream saw between two
// tokens while the phase lasted, and how long after the fault the cluster was whole again (every
// instance listed in /health and a fresh request served; for SIGSTOP, counted from SIGCONT).
//
//   TURBINE_BIN=build/turbine TURBINE_SHARED=../shared node bench/fault_soak.mjs [--clients 6]
//       [--phase-seconds 15] [--json out.json]
//
// Bounded and local: every process is on 127.0.0.1 and everything is killed at the end.
import fs from 'node:fs';
import { Cluster, sleep, waitFor } from '../tests/e2e/cluster.mjs';
import { MODEL_NAME } from '../tests/e2e/server.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const CLIENTS = Number(opt('--clients', 6));
const PHASE_S = Number(opt('--phase-seconds', 15));
const MAX_TOKENS = 96;
const WORKERS = 3;

const c = new Cluster({ leaseTtl: 3 });
const log = (...m) => console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...m);

// One streaming completion; what happened to it.
async function stream(prompt) {
  const t0 = Date.now();
  let last = t0;
  let maxGap = 0;
  const gaps = [];  // pauses over 0.5 s: [start, end]
  let text = '';
  let finish = null;
  try {
    const r = await fetch(`${c.base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL_NAME, prompt, max_tokens: MAX_TOKENS, temperature: 0,
        ignore_eos: true, stream: true }),
      signal: AbortSignal.timeout(120000),
    });
    if (r.status !== 200) return { ok: false, why: `HTTP ${r.status}`, t0, end: Date.now(), maxGap, gaps };
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const now = Date.now();
      maxGap = Math.max(maxGap, now - last);
      if (now - last > 500) gaps.push([last, now]);
      last = now;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
        const j = JSON.parse(ev.slice(6));
        if (j.error) return { ok: false, why: j.error.message, t0, end: Date.now(), maxGap, gaps };
        text += j.choices[0].text;
        if (j.choices[0].finish_reason) finish = j.choices[0].finish_reason;
      }
    }
  } catch (e) {
    return { ok: false, why: String(e), t0, end: Date.now(), maxGap, gaps };
  }
  return { ok: finish === 'length', why: finish === 'length' ? '' : `finish ${finish}`, t0, end: Date.now(), maxGap, gaps };
}

// Clients loop until stopped; every result is kept with its timestamps.
const results = [];
let running = true;
async function client(k) {
  for (let n = 0; running; ++n) results.push(await stream(`Client ${k} asks for story ${n}: once upon a time`));
}

async function whole() {
  const h = await c.health();
  if (h.ids.length !== WORKERS) return false;
  const r = await fetch(`${c.base}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL_NAME, prompt: 'ping', max_tokens: 2 }),
    signal: AbortSignal.timeout(20000),
  });
  return r.status === 200;
}

async function timeToWhole(from) {
  await waitFor(whole, 120000, 'the cluster to be whole again');
  return (Date.now() - from) / 1000;
}

const phases = [];
async function phase(name, fault) {
  const start = Date.now();
  log(`phase: ${name}`);
  const recover = await fault();
  const rest = start + PHASE_S * 1000 - Date.now();
  if (rest > 0) await sleep(rest);
  const end = Date.now();
  phases.push({ name, start, end, recover_s: recover });
}

try {
  await c.startEtcd();
  await c.startNats();
  await c.startFrontend();
  for (let i = 0; i < WORKERS; i++) await c.startWorker();
  await waitFor(whole, 30000, 'the cluster');
  const clients = Array.from({ length: CLIENTS }, (_, k) => client(k));

  await phase('baseline', async () => 0);
  await phase('kill -9 a worker, start a replacement', async () => {
    const t = Date.now();
    const victim = c.workers.shift();
    await victim.kill('SIGKILL');
    await c.startWorker();
    return timeToWhole(t);
  });
  await phase('SIGSTOP a worker for 8 s', async () => {
    const w = c.workers[0];
    w.proc.kill('SIGSTOP');
    await sleep(8000);
    w.proc.kill('SIGCONT');
    return timeToWhole(Date.now());
  });
  await phase('restart NATS', async () => {
    const t = Date.now();
    await c.nats.kill('SIGKILL');
    await sleep(1000);
    await c.startNats();
    return timeToWhole(t);
  });
  await phase('restart etcd (kill -9)', async () => {
    const t = Date.now();
    await c.etcd.kill('SIGKILL');
    await sleep(2000);
    await c.startEtcd();
    return timeToWhole(t);
  });
  await phase('after', async () => 0);

  running = false;
  await Promise.all(clients);
} finally {
  running = false;
  for (const w of c.workers) { try { w.proc.kill('SIGCONT'); } catch { /* gone */ } }
  await c.stopAll();
}

// A request belongs to the phase in which it started; a pause to the phase in which it began.
const rows = phases.map((p) => {
  const rs = results.filter((r) => r.t0 >= p.start && r.t0 < p.end);
  const failed = rs.filter((r) => !r.ok);
  const pauses = results.flatMap((r) => r.gaps).filter(([a]) => a >= p.start && a < p.end);
  const inPhase = results.filter((r) => r.t0 < p.end && r.end > p.start);
  return {
    phase: p.name,
    requests: rs.length,
    failed: failed.length,
    failures: [...new Set(failed.map((r) => r.why))].slice(0, 3),
    max_token_gap_s: Math.max(0, ...pauses.map(([a, b]) => b - a),
      ...inPhase.map((r) => (r.gaps.length ? 0 : Math.min(r.maxGap, 500)))) / 1000,
    paused_streams: pauses.length,
    recover_s: p.recover_s,
  };
});
console.log('\n| phase | requests | failed | streams paused > 0.5 s | longest pause (s) | whole again after (s) |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.phase} | ${r.requests} | ${r.failed} | ${r.paused_streams} | ` +
    `${r.max_token_gap_s.toFixed(2)} | ${r.recover_s.toFixed(2)} |`);
  for (const f of r.failures) console.log(`|   failure: ${f} | | | | | |`);
}
const warnings = c.frontend.log.split('\n').filter((l) => /\[(warning|error)\]/.test(l));
console.log(`\nfrontend warnings/errors: ${warnings.length}; first few:`);
for (const l of warnings.slice(0, 8)) console.log('  ' + l);
const out = opt('--json', null);
if (out) fs.writeFileSync(out, JSON.stringify({ clients: CLIENTS, phase_s: PHASE_S, rows }, null, 2));
process.exit(rows.some((r) => r.failed > 0) ? 1 : 0);
