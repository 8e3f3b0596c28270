// Disaggregated serving across processes (issue 8): real etcd + nats-server, one frontend, one
// decode worker and one prefill worker (`--worker-type`), stories260K, KV blocks over TCP.
// Greedy texts equal the aggregated ones, a repeated prompt moves only the blocks the decode
// worker lacks, and a prefill worker killed mid-load costs nothing but speed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, freePort, haveBinaries, skipUnlessInstalled, sleep, streamCompletion, waitFor } from './cluster.mjs';
import { MODEL_NAME } from './server.mjs';
import { scrapeText } from './prometheus.mjs';

const skip = skipUnlessInstalled(haveBinaries() ? null : 'etcd or nats-server is not installed (scripts/install-deps)');
// Long enough for several 16-token KV blocks, distinct from their first words on.
const PROMPTS = Array.from({ length: 8 }, (_, i) =>
  `Story ${i}: once upon a time there was a little girl named Lily who loved to play in the park ` +
  `with her dog Max and her friend Tom, and one day they found a big red ball`);
const MAX_TOKENS = 40;

// Sum of a metric's samples; `label` (e.g. 'transport="tcp"') keeps only the series carrying it.
async function metric(url, name, label = '') {
  const text = await scrapeText(url);
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))) {
    if (!label || (m[1] ?? '').includes(label)) sum += Number(m[2]);
  }
  return sum;
}

async function texts(base, prompts) {
  return Promise.all(prompts.map(async (p) => {
    const r = await streamCompletion(base, p, MAX_TOKENS);
    assert.equal(r.status, 200, `HTTP ${r.status}: ${r.error}`);
    assert.equal(r.error, null, `stream error: ${JSON.stringify(r.error)}`);
    return r.text;
  }));
}

describe('disaggregated serving', { skip, timeout: 180000 }, () => {
  const c = new Cluster({ leaseTtl: 3 });
  let decodeStatus;
  let prefillStatus;
  let prefill;
  let aggregated;

  before(async () => {
    await c.startEtcd();
    await c.startNats();
    // Every prompt here is longer than 8 uncached tokens: prefilled remotely when possible.
    await c.startFrontend(['--max-local-prefill-length', '8']);
    decodeStatus = await freePort();
    await c.startWorker(['--worker-type', 'decode', '--status-port', String(decodeStatus)]);
    await waitFor(async () => (await c.models()).includes(MODEL_NAME), 10000, 'the model');
    // Without prefill workers the frontend prefills on the decode worker: aggregated serving.
    aggregated = await texts(c.base, PROMPTS);
    prefillStatus = await freePort();
    prefill = await c.startWorker(['--worker-type', 'prefill', '--status-port', String(prefillStatus)]);
    await waitFor(async () => (await c.healthIds()).length === 2, 10000, 'the prefill worker in /health');
    await sleep(300);  // its model card follows its instance key
  });
  after(async () => { await c.stopAll(); });

  test('greedy texts equal aggregated serving, prefilled on the prefill worker', async () => {
    const remoteBefore = await metric(`${c.base}/metrics`, 'turbine_disagg_remote_prefills_total');
    const importsBefore = await metric(`http://127.0.0.1:${decodeStatus}/metrics`, 'turbine_engine_kv_imports_total');
    const disaggregated = await texts(c.base, PROMPTS);
    assert.deepEqual(disaggregated, aggregated);
    const remote = (await metric(`${c.base}/metrics`, 'turbine_disagg_remote_prefills_total')) - remoteBefore;
    assert.equal(remote, PROMPTS.length, 'every request prefilled on the prefill worker');
    const decode = `http://127.0.0.1:${decodeStatus}/metrics`;
    assert.equal((await metric(decode, 'turbine_engine_kv_imports_total')) - importsBefore, PROMPTS.length);
    assert.equal(await metric(decode, 'turbine_engine_kv_import_fallbacks_total'), 0);
    const bytes = await metric(decode, 'turbine_engine_kv_transfer_bytes_total');
    assert.ok(bytes > 0);
    // CPU workers: every byte came over TCP, and the transport's own counters say so.
    assert.equal(await metric(decode, 'turbine_kv_transport_bytes_total', 'transport="tcp"'), bytes);
    assert.equal(await metric(decode, 'turbine_kv_transport_failures_total', 'transport="tcp"'), 0);
    assert.ok(await metric(decode, 'turbine_kv_transport_fetches_total', 'transport="tcp"') >= PROMPTS.length);
    // Nothing is left in the prefill queue once every request is answered.
    assert.equal(await metric(`${c.base}/metrics`, 'turbine_disagg_prefill_inflight'), 0);
    assert.equal(await metric(`${c.base}/metrics`, 'turbine_disagg_prefill_queue_size'), 0);
    // The prefill worker's pinned blocks are released once the decode worker has them.
    const pre = `http://127.0.0.1:${prefillStatus}/metrics`;
    await waitFor(async () => (await metric(pre, 'turbine_engine_kv_transfer_pinned_blocks')) === 0, 5000, 'pinned blocks released');
    assert.equal(await metric(pre, 'turbine_engine_kv_used_blocks'), 0);
    assert.equal(await metric(decode, 'turbine_engine_kv_used_blocks'), 0);
  });

  test('a repeated prompt moves only the blocks the decode worker lacks', async () => {
    const decode = `http://127.0.0.1:${decodeStatus}/metrics`;
    const fetched0 = await metric(decode, 'turbine_engine_kv_import_fetched_blocks_total');
    const reused0 = await metric(decode, 'turbine_engine_kv_import_reused_blocks_total');
    const [again] = await texts(c.base, [PROMPTS[0]]);
    assert.equal(again, aggregated[0]);
    const fetched = (await metric(decode, 'turbine_engine_kv_import_fetched_blocks_total')) - fetched0;
    const reused = (await metric(decode, 'turbine_engine_kv_import_reused_blocks_total')) - reused0;
    assert.ok(reused >= 2, `blocks reused from the decode worker's cache: ${reused}`);
    assert.ok(fetched <= 1, `blocks moved: ${fetched} (at most the partial last block)`);
  });

  // The frontend keeps a model's prefill pool while the model goes (its last decode worker left)
  // and comes back: the returning model is served disaggregated again.
  test('a decode worker that leaves and comes back is served disaggregated again', async () => {
    await c.workers.find((w) => w !== prefill).kill('SIGTERM');
    await waitFor(async () => !(await c.models()).includes(MODEL_NAME), 10000, 'the model gone');
    decodeStatus = await freePort();
    await c.startWorker(['--worker-type', 'decode', '--status-port', String(decodeStatus)]);
    await waitFor(async () => (await c.models()).includes(MODEL_NAME), 10000, 'the model back');
    const remoteBefore = await metric(`${c.base}/metrics`, 'turbine_disagg_remote_prefills_total');
    assert.deepEqual(await texts(c.base, PROMPTS.slice(0, 3)), aggregated.slice(0, 3));
    const remote = (await metric(`${c.base}/metrics`, 'turbine_disagg_remote_prefills_total')) - remoteBefore;
    assert.equal(remote, 3, 'prefilled on the prefill worker, which stayed');
    const decode = `http://127.0.0.1:${decodeStatus}/metrics`;
    assert.equal(await metric(decode, 'turbine_engine_kv_imports_total'), 3);
  });

  test('kill -9 of the prefill worker under load: every text as aggregated, no blocks leak', async () => {
    const pending = texts(c.base, PROMPTS);
    await sleep(50);
    await prefill.kill('SIGKILL');
    assert.deepEqual(await pending, aggregated);
    // Later requests prefill on the decode worker once the prefill worker is gone.
    assert.deepEqual(await texts(c.base, PROMPTS.slice(0, 2)), aggregated.slice(0, 2));
    const decode = `http://127.0.0.1:${decodeStatus}/metrics`;
    await waitFor(async () => (await metric(decode, 'turbine_engine_kv_used_blocks')) === 0, 5000, 'decode blocks free');
    assert.equal(await metric(decode, 'turbine_engine_running_requests'), 0);
  });
});
