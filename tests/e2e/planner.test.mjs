// `turbine planner` with real processes (issue 23): the local connector scales a pool of mock
// workers down while `turbine bench` streams through `turbine frontend`, and nothing is lost;
// metrics that cannot be read hold the fleet; a worker that never becomes ready is replaced once;
// a bad configuration refuses to start with the key named. Real etcd + nats-server (the cluster
// helpers); without them the suite is skipped, or fails under CI=true.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cluster, freePort, haveBinaries, sleep, waitFor } from './cluster.mjs';
import { MODEL, MODEL_NAME } from './server.mjs';

const BIN = process.env.TURBINE_BIN;
const missing = haveBinaries() ? false : 'etcd or nats-server is not installed (scripts/install-deps)';
if (missing && process.env.CI === 'true') throw new Error(missing);

// Starts `turbine planner ARGS`; collects its log. `stop()` sends SIGTERM and resolves the code.
function startPlanner(args) {
  const proc = spawn(BIN, ['planner', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const p = { proc, log: '' };
  proc.stdout.on('data', (d) => { p.log += d.toString(); });
  proc.stderr.on('data', (d) => { p.log += d.toString(); });
  p.exited = new Promise((r) => proc.once('exit', (code, sig) => r(code ?? sig)));
  p.stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    return p.exited;
  };
  p.statusPort = async () => {
    await waitFor(() => /planner status .* on [^:]+:(\d+)/.test(p.log), 10000, 'the planner status port');
    return Number(p.log.match(/planner status .* on [^:]+:(\d+)/)[1]);
  };
  p.metric = async (name, labels = '') => {
    const text = await (await fetch(`http://127.0.0.1:${await p.statusPort()}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(name) && l.includes(labels) && !l.startsWith('#'));
    return line === undefined ? undefined : Number(line.split(' ').pop());
  };
  return p;
}

describe('planner, local connector', { skip: missing, timeout: 240000 }, () => {
  const c = new Cluster({ leaseTtl: 3 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turbine-planner-'));
  const planners = [];
  before(async () => {
    await c.startEtcd();
    await c.startNats();
    await c.startFrontend();
  });
  after(async () => {
    await Promise.all(planners.map((p) => p.stop()));
    await c.stopAll();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('scale-down while requests stream: the removed worker drains, the bench reports 0 errors', async () => {
    // Mock workers at a quarter of real time: each request lasts seconds, long enough to be in
    // flight when the planner removes a worker. SIGTERM drains (--shutdown-grace 120).
    const worker = [BIN, 'worker', '--model', MODEL, '--served-model-name', MODEL_NAME,
      '--advertise-host', '127.0.0.1', '--request-plane-host', '127.0.0.1', '--engine', 'mock',
      '--speedup', '0.25', '--shutdown-grace', '120', ...c.runtimeArgs()].join(' ');
    const log = path.join(dir, 'decisions.jsonl');
    const planner = startPlanner(['--mode', 'load', '--connector', 'local', '--interval', '4',
      '--model', MODEL_NAME, '--min-decode', '1', '--max-decode', '2', '--initial-decode', '2',
      '--frontend-metrics', `${c.base}/metrics`, '--decode-command', worker, '--log-dir', dir,
      '--decision-log', log, '--status-port', '0']);
    planners.push(planner);
    await waitFor(async () => (await c.healthIds()).length === 2, 30000, 'the 2 initial workers');
    const report = path.join(dir, 'bench.json');
    const bench = spawnSync(BIN, ['bench', '--url', c.base, '--endpoint', 'completions',
      '--model', MODEL_NAME, '-c', '8', '-n', '16', '--input-len', '64', '--output-len', '300',
      '--no-progress', '--output-json', report], { encoding: 'utf8', timeout: 180000 });
    assert.equal(bench.status, 0, bench.stdout + bench.stderr);
    const r = JSON.parse(fs.readFileSync(report, 'utf8'));
    assert.equal(r.errors, 0, bench.stdout);
    assert.equal(r.completed, 16);
    assert.equal(r.output_tokens, 16 * 300);  // every stream ran to its max_tokens

    // The planner removed one worker during the run, and that worker had requests to finish.
    await waitFor(() => /exited \(0\) after draining/.test(planner.log), 30000, 'the drained worker to exit');
    const events = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const stopping = events.filter((e) => e.event === 'worker_stopping');
    assert.equal(stopping.length, 1, planner.log);
    const exited = events.find((e) => e.event === 'worker_exited' && e.worker === stopping[0].worker);
    assert.equal(exited.code, 0);
    const benchStart = fs.statSync(report).mtimeMs / 1000 - r.duration_s;
    assert.ok(stopping[0].unix_s > benchStart && stopping[0].unix_s < benchStart + r.duration_s,
      'the scale-down happened while the bench ran');
    assert.ok(exited.drain_s > 0.5, `the stopped worker had nothing in flight (drained in ${exited.drain_s} s)`);
    // Both workers served requests of the bench.
    const metrics = await (await fetch(`${c.base}/metrics`)).text();
    const routed = metrics.split('\n').filter((l) => l.startsWith('turbine_router_decisions_total{'));
    assert.ok(routed.length >= 2, metrics);
    assert.equal((await c.healthIds()).length, 1);
    assert.equal(await planner.metric('turbine_planner_current_replicas', 'pool="decode"'), 1);
    assert.equal(await planner.metric('turbine_planner_decisions_total', 'direction="down"'), 1);
    // SIGTERM stops the planner, which drains and stops its last worker.
    assert.equal(await planner.stop(), 0);
    await waitFor(async () => (await c.healthIds()).length === 0, 15000, 'the last worker to leave');
  });

  test('unreachable metrics: the fleet is held and the planner says so', async () => {
    const closed = await freePort();
    const planner = startPlanner(['--mode', 'load', '--connector', 'local', '--interval', '0.5',
      '--model', MODEL_NAME, '--min-decode', '1', '--frontend-metrics', `http://127.0.0.1:${closed}/metrics`,
      '--decode-command', `${BIN} worker --model ${MODEL} --engine mock ${c.runtimeArgs().join(' ')}`,
      '--status-port', '0']);
    planners.push(planner);
    await waitFor(() => (planner.log.match(/metrics unreachable/g) ?? []).length >= 3, 15000, 'three held intervals');
    assert.match(planner.log, /frontend metrics unreachable \(.*\): holding the fleet at its current size/);
    assert.equal(await planner.metric('turbine_planner_metrics_unreachable'), 1);
    // The warning is logged just before the counter is incremented: wait for the counter too.
    await waitFor(async () => await planner.metric('turbine_planner_metrics_failures_total') >= 3,
      5000, 'three counted failures');
    assert.equal(await planner.metric('turbine_planner_current_replicas', 'pool="decode"'), 1);
    assert.doesNotMatch(planner.log, /pool 1 -> /);  // no decision while blind
    assert.equal(await planner.stop(), 0);
  });

  test('a worker that never becomes ready is counted, replaced once, then not retried', async () => {
    const planner = startPlanner(['--mode', 'load', '--connector', 'local', '--interval', '0.5',
      '--model', MODEL_NAME, '--min-decode', '1', '--frontend-metrics', `${c.base}/metrics`,
      // Alive but never healthy (sh gets the appended --status-port as $1 and ignores it).
      '--decode-command', "sh -c 'exec sleep 600' never-ready", '--ready-timeout', '1',
      '--status-port', '0']);
    planners.push(planner);
    await waitFor(() => /not starting more/.test(planner.log), 20000, 'the pool to be blocked');
    await sleep(3000);  // a few more intervals: nothing else is started
    assert.equal((planner.log.match(/started decode worker/g) ?? []).length, 2, planner.log);
    assert.equal((planner.log.match(/never became ready: /g) ?? []).length, 2, planner.log);
    assert.equal((planner.log.match(/not starting more/g) ?? []).length, 1, planner.log);
    assert.equal(await planner.metric('turbine_planner_worker_start_failures_total', 'pool="decode"'), 2);
    assert.equal(await planner.metric('turbine_planner_pool_blocked', 'pool="decode"'), 1);
    assert.equal(await planner.stop(), 0);
  });
});

describe('planner configuration errors', () => {
  const cases = [
    ['an unknown key', { models: [], intervall: 3 }, /intervall: unknown key/],
    ['max below min', { models: [{ name: 'm', pools: { decode: { min: 3, max: 2, command: ['x'] } } }] },
      /models\[0\]\.pools\.decode\.max: must be >= min \(3\)/],
    ['sla mode without a profile', { mode: 'sla', models: [{ name: 'm', pools: { decode: { command: ['x'] } } }] },
      /models\[0\]\.profile: required in sla mode/],
    ['the local connector without a command', { models: [{ name: 'm', pools: { decode: {} } }] },
      /models\[0\]\.pools\.decode\.command: required by the local connector/],
    ['a profile file that does not exist',
      { mode: 'sla', models: [{ name: 'm', profile: '/nonexistent.json', pools: { decode: { command: ['x'] } } }] },
      /models\[0\]\.profile: .*cannot read \/nonexistent\.json/],
  ];
  for (const [what, config, pattern] of cases) {
    test(`refuses to start with ${what}, naming the key`, () => {
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'turbine-planner-cfg-')), 'planner.json');
      fs.writeFileSync(file, JSON.stringify(config));
      const r = spawnSync(BIN, ['planner', '--config', file], { encoding: 'utf8', timeout: 10000 });
      assert.equal(r.status, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /refusing to start/);
      assert.match(r.stderr, pattern);
    });
  }
});

describe('turbine planner profile and size', { timeout: 120000 }, () => {
  test('a sweep against one mock worker gives a profile the SLA mode can size with', async () => {
    const { startServer } = await import('./server.mjs');
    // One in-process mock worker at 2x simulated time; --time-scale 2 records simulated time.
    // (A larger speedup shrinks the gaps between the points below the scheduling noise of a
    // loaded machine: at 10x, 512 and 2048 tokens are ~5 ms of wall time apart.)
    const server = await startServer(['--engine', 'mock', '--speedup', '2']);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turbine-profile-'));
    const out = path.join(dir, 'profile.json');
    try {
      const r = spawnSync(BIN, ['planner', 'profile', '--url', server.base, '--time-scale', '2',
        '--isl', '512,2048,8192', '--contexts', '1024,4096', '--concurrency', '1,8,32',
        '--prefill-requests', '3', '--decode-output-len', '64', '--output', out],
      { encoding: 'utf8', timeout: 100000 });
      assert.equal(r.status, 0, r.stderr);
      const p = JSON.parse(fs.readFileSync(out, 'utf8'));
      assert.equal(p.version, 1);
      assert.equal(p.time_scale, 2);
      assert.deepEqual(p.prefill.map((x) => x.isl), [512, 2048, 8192]);
      // The mock's timing model: a prompt costs ~0.03 ms per token (8B on an H100), so longer
      // prompts take longer, and decoding more sequences together takes longer per step.
      for (let i = 1; i < p.prefill.length; i++) assert.ok(p.prefill[i].ttft_ms > p.prefill[i - 1].ttft_ms, JSON.stringify(p.prefill));
      assert.ok(p.prefill[2].ttft_ms > 150 && p.prefill[2].ttft_ms < 1500, JSON.stringify(p.prefill));
      for (const c of p.decode) {
        assert.ok(c.points[2].itl_ms > c.points[0].itl_ms, JSON.stringify(c));
        assert.ok(c.points[0].itl_ms > 3 && c.points[0].itl_ms < 30, JSON.stringify(c));
      }
      // The SLA mode's sizing from it: more load, more workers.
      const size = (rate) => JSON.parse(spawnSync(BIN, ['planner', 'size', '--profile', out, '--rate', String(rate),
        '--isl', '4000', '--osl', '200', '--ttft', '1000', '--itl', '30'], { encoding: 'utf8' }).stdout);
      const low = size(1), high = size(10);
      assert.ok(low.decode >= 1 && high.decode > low.decode, `${JSON.stringify(low)} ${JSON.stringify(high)}`);
      assert.ok(high.ttft_s <= 1.0 && high.itl_s <= 0.03, JSON.stringify(high));
    } finally {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
