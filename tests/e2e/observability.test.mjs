// Observability of a distributed deployment (real etcd + nats-server, 1 frontend, 1 worker with a
// status port, stories260K): every metric docs/DEPLOY.md marks "exists" is served under load with
// values that add up to the requests sent, and one request's trace reaches an OTLP receiver with
// frontend, routing and worker spans under the client's traceparent.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster, freePort, haveBinaries, skipUnlessInstalled, waitFor } from './cluster.mjs';
import { MODEL_NAME } from './server.mjs';
import { scrapeText } from './prometheus.mjs';

const skip = skipUnlessInstalled(haveBinaries() ? null : 'etcd or nats-server is not installed (scripts/install-deps)');
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// Metric names docs/DEPLOY.md documents as existing.
function documentedMetrics() {
  const doc = fs.readFileSync(path.join(repo, 'docs/DEPLOY.md'), 'utf8');
  const names = [];
  for (const m of doc.matchAll(/^\| `(turbine_[a-z0-9_]+)` \|[^|]*\|[^|]*\| exists \|/gm)) names.push(m[1]);
  return names;
}

// Prometheus text format -> [{name, labels, value}] plus the set of declared (# TYPE) families.
function parseMetrics(text) {
  const samples = [];
  const families = new Map();
  for (const line of text.split('\n')) {
    const t = line.match(/^# TYPE (\S+) (\S+)/);
    if (t) { families.set(t[1], t[2]); continue; }
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)/);
    if (!m) continue;
    const labels = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return { samples, families };
}

function sum(metrics, name, filter = {}) {
  return metrics.samples
    .filter((s) => s.name === name && Object.entries(filter).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

// A minimal OTLP/HTTP JSON receiver: keeps every span with its resource's service.name.
function startReceiver() {
  const spans = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') {
        for (const rs of JSON.parse(body).resourceSpans ?? []) {
          const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue;
          for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, service });
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else {
        res.writeHead(404).end();
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, spans })));
}

describe('observability', { skip, timeout: 120000 }, () => {
  const c = new Cluster({ leaseTtl: 3 });
  let receiver;
  let statusPort;

  before(async () => {
    receiver = await startReceiver();
    const endpoint = `http://127.0.0.1:${receiver.server.address().port}/v1/traces`;
    statusPort = await freePort();
    await c.startEtcd();
    await c.startNats();
    // The standard OpenTelemetry variable: children inherit it at spawn.
    process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = endpoint;
    try {
      await c.startFrontend();
      // A host KV tier, so the turbine_kv_tier_* series (served only where a tier is configured)
      // are part of the documented set this test checks.
      await c.startWorker(['--status-port', String(statusPort), '--kv-offload-host-bytes', String(16 << 20)]);
    } finally {
      delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
    }
    await waitFor(async () => (await c.models()).includes(MODEL_NAME), 10000, 'the model');
  });
  after(async () => {
    await c.stopAll();
    receiver?.server.close();
  });

  test('every documented metric is served under load, and the counts add up', async () => {
    const N = 24;
    const results = await Promise.all(Array.from({ length: N }, async (_, i) => {
      const stream = i % 2 === 0;
      const r = await fetch(`${c.base}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: MODEL_NAME, prompt: `Once upon a time ${i} little fox`, max_tokens: 8 + (i % 5),
          temperature: 0, stream, ...(stream ? { stream_options: { include_usage: true } } : {}),
        }),
      });
      assert.equal(r.status, 200);
      if (!stream) return (await r.json()).usage;
      const text = await r.text();
      const chunks = text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)));
      return chunks.find((ch) => ch.usage)?.usage;
    }));
    for (const u of results) assert.ok(u, 'every request reports usage');
    const promptTokens = results.reduce((a, u) => a + u.prompt_tokens, 0);
    const completionTokens = results.reduce((a, u) => a + u.completion_tokens, 0);

    const front = parseMetrics(await scrapeText(`${c.base}/metrics`));
    const worker = parseMetrics(await scrapeText(`http://127.0.0.1:${statusPort}/metrics`));
    const documented = documentedMetrics();
    assert.ok(documented.length >= 20, `docs/DEPLOY.md lists ${documented.length} existing metrics`);
    // turbine_planner_* are the planner process's own series (tests/e2e/planner.test.mjs).
    const missing = documented.filter((n) => !n.startsWith('turbine_planner_') &&
      !front.families.has(n) && !worker.families.has(n));
    assert.deepEqual(missing, [], 'documented metrics served by neither the frontend nor the worker');

    const model = { model: MODEL_NAME };
    assert.equal(sum(front, 'turbine_frontend_requests_total', { ...model, status: 'success' }), N);
    assert.equal(sum(front, 'turbine_frontend_requests_total', { ...model, status: 'error' }), 0);
    for (const h of ['turbine_frontend_time_to_first_token_seconds', 'turbine_frontend_request_duration_seconds',
      'turbine_frontend_input_sequence_tokens', 'turbine_frontend_output_sequence_tokens']) {
      assert.equal(sum(front, `${h}_count`, model), N, `${h}_count`);
      assert.equal(sum(front, `${h}_bucket`, { ...model, le: '+Inf' }), N, `${h} +Inf bucket`);
    }
    assert.equal(sum(front, 'turbine_frontend_input_sequence_tokens_sum', model), promptTokens);
    assert.equal(sum(front, 'turbine_frontend_output_sequence_tokens_sum', model), completionTokens);
    assert.equal(sum(front, 'turbine_frontend_output_tokens_total', model), completionTokens);
    // Every request is longer than its first token, and every token after the first has an ITL.
    const ttftSum = sum(front, 'turbine_frontend_time_to_first_token_seconds_sum', model);
    const e2eSum = sum(front, 'turbine_frontend_request_duration_seconds_sum', model);
    assert.ok(ttftSum > 0 && ttftSum <= e2eSum, `TTFT sum ${ttftSum} within E2E sum ${e2eSum}`);
    const itl = sum(front, 'turbine_frontend_inter_token_latency_seconds_count', model);
    assert.ok(itl >= 1 && itl <= completionTokens - N, `ITL observations ${itl}`);
    assert.equal(sum(front, 'turbine_frontend_inflight_requests', model), 0);
    assert.equal(sum(front, 'turbine_frontend_queued_requests', model), 0);
    assert.ok(sum(front, 'turbine_http_requests_total', { code: '200' }) >= N);

    // The worker's engine saw the same requests and is idle again with its KV blocks free.
    assert.ok(sum(worker, 'turbine_engine_kv_total_blocks') > 0);
    assert.equal(sum(worker, 'turbine_engine_kv_used_blocks'), 0);
    assert.equal(sum(worker, 'turbine_engine_running_requests'), 0);
    assert.equal(sum(worker, 'turbine_engine_waiting_requests'), 0);
    assert.ok(sum(worker, 'turbine_engine_steps_total') >= Math.max(...results.map((u) => u.completion_tokens)));
    assert.ok(sum(worker, 'turbine_engine_prefix_cache_queried_tokens_total') >= promptTokens - N);
  });

  test('one request is one trace: frontend, route and worker spans under the client span', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const clientSpan = 'b7ad6b7169203331';
    const r = await fetch(`${c.base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${clientSpan}-01` },
      body: JSON.stringify({ model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 4, temperature: 0 }),
    });
    assert.equal(r.status, 200);
    await r.json();
    const mine = () => receiver.spans.filter((s) => s.traceId === traceId);
    await waitFor(async () => mine().length >= 3, 10000, 'three spans of the trace');
    const spans = mine();
    const server = spans.find((s) => s.name === 'POST /v1/completions');
    const route = spans.find((s) => s.name === 'route');
    const work = spans.find((s) => s.name === 'generate');
    assert.ok(server && route && work, `spans: ${spans.map((s) => s.name).join(', ')}`);
    assert.equal(server.parentSpanId, clientSpan);
    assert.equal(route.parentSpanId, server.spanId);
    assert.equal(work.parentSpanId, route.spanId);
    assert.equal(server.service, 'turbine-frontend');
    assert.equal(route.service, 'turbine-frontend');
    assert.equal(work.service, 'turbine-worker');
    assert.equal(server.kind, 2);
    assert.equal(work.kind, 2);
    const attr = (s, k) => s.attributes.find((a) => a.key === k)?.value;
    assert.equal(attr(server, 'gen_ai.usage.output_tokens').intValue, '4');
    assert.equal(attr(route, 'turbine.worker.instance_id').stringValue, BigInt(c.workers[0].id).toString(16));
    assert.equal(attr(work, 'gen_ai.usage.output_tokens').intValue, '4');
    // The worker's span lies inside the frontend's.
    assert.ok(BigInt(work.startTimeUnixNano) >= BigInt(server.startTimeUnixNano));
    assert.ok(BigInt(work.endTimeUnixNano) <= BigInt(server.endTimeUnixNano));
  });
});
