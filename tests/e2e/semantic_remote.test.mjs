// The semantic layer's model signals on encoder workers (issue 21): `turbine frontend
// --semantic-config` whose domain classifier is a model served by an encoder worker
// (`encoder_models.domain_classifier: {model_id, source: remote}`), over etcd and NATS, beside a
// generative `turbine worker`. Before the encoder worker joins, MoM requests are answered with
// the signal absent (the fallback decision) and counted; once it serves, the domain decision
// routes; a model that never appears is reported; when the encoder worker dies, requests still
// pass. The parsed /metrics must stay valid throughout.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster, haveBinaries, skipUnlessInstalled, waitFor } from './cluster.mjs';
import { scrape, value } from './prometheus.mjs';
import { MODEL_NAME } from './server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLASSIFIER = path.join(HERE, '..', 'fixtures', 'encoders', 'bert_cls');

// The fixture classifier's labels are negative/neutral/positive (random weights): with every
// label and threshold 0 the `mood` signal holds whenever the model answers, and is absent when
// it cannot. `never-served` names a model no worker serves (jailbreak method both: the
// heuristic still guards).
const CONFIG = `
models: [{name: ${MODEL_NAME}}]
signals:
  domains: [{name: mood, labels: [negative, neutral, positive], threshold: 0.0}]
decisions:
  - {name: moody, rules: {type: domain, name: mood}, models: [${MODEL_NAME}]}
default_decision: {name: fallback, models: [${MODEL_NAME}]}
jailbreak: {method: both}
encoder_models:
  domain_classifier: {model_id: mood-cls, source: remote}
  jailbreak_classifier: {model_id: never-served, source: remote}
  remote_wait_seconds: 1
  timeout_ms: 10000
`;

const missing = haveBinaries() ? null : 'etcd or nats-server is not installed (scripts/install-deps)';

describe('semantic signals served by encoder workers', { skip: skipUnlessInstalled(missing), timeout: 120000 }, () => {
  const c = new Cluster({ leaseTtl: 2 });

  before(async () => {
    const file = path.join(c.dir, 'semantic.yaml');
    fs.writeFileSync(file, CONFIG);
    await c.startEtcd();
    await c.startNats();
    await c.startFrontend(['--semantic-config', file]);
    await c.startWorker();  // stories260K: generation
    await waitFor(async () => (await c.models()).includes(MODEL_NAME), 15000, 'the generative model');
  });
  after(async () => { await c.stopAll(); });

  async function ask(content) {
    const r = await fetch(`${c.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'MoM', messages: [{ role: 'user', content }], max_tokens: 4 }),
    });
    const body = await r.json();
    return { status: r.status, decision: r.headers.get('x-vsr-selected-decision'), body };
  }
  const metrics = () => scrape(`${c.base}/metrics`);
  const available = (m, key, model) =>
    value(m, 'turbine_semantic_encoder_model_available', { key, model });

  test('no encoder worker yet: the signal is absent, counted, and the request answered', async () => {
    const r = await ask('What a lovely day it is today');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.decision, 'fallback');
    assert.equal(r.body.model, MODEL_NAME);
    const m = await metrics();
    assert.ok(value(m, 'turbine_semantic_signal_unavailable_total', { signal: 'domain', reason: 'unavailable' }) >= 1);
    assert.ok(value(m, 'turbine_semantic_signal_errors_total', { signal: 'jailbreak_model' }) >= 1);
    assert.equal(available(m, 'domain_classifier', 'mood-cls'), 0);
  });

  test('a model that never appears is reported', async () => {
    await waitFor(() => /jailbreak_classifier names model 'never-served', which no encoder worker has served/.test(c.frontend.log),
      10000, 'the missing-model error in the frontend log');
    assert.equal(available(await metrics(), 'jailbreak_classifier', 'never-served'), 0);
  });

  test('once an encoder worker serves the classifier, the domain decision routes', async () => {
    await c.startWorker([], { model: CLASSIFIER, name: 'mood-cls' });
    await waitFor(async () => available(await metrics(), 'domain_classifier', 'mood-cls') === 1, 15000,
      'mood-cls available');
    await waitFor(() => /domain_classifier: model 'mood-cls' is served by encoder workers/.test(c.frontend.log),
      5000, 'the model announced in the log');
    const before = value(await metrics(), 'turbine_semantic_signal_errors_total', { signal: 'domain' });
    for (const text of ['What a lovely day it is today', 'This is the worst service ever']) {
      const r = await ask(text);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.decision, 'moody');
      assert.equal(r.body.model, MODEL_NAME);
    }
    const m = await metrics();
    assert.equal(value(m, 'turbine_semantic_signal_errors_total', { signal: 'domain' }), before);
    assert.ok(value(m, 'turbine_semantic_signal_latency_seconds_count', { signal: 'domain' }) >= 2);
  });

  test('the encoder worker dies: requests still pass, and fall back once it is gone', async () => {
    await c.workers[1].kill('SIGKILL');
    const r = await ask('Anything at all');  // its call fails or finds no worker: answered anyway
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await waitFor(async () => available(await metrics(), 'domain_classifier', 'mood-cls') === 0, 15000,
      'mood-cls gone after its lease expired');
    const after = await ask('What a lovely day it is today');
    assert.equal(after.status, 200);
    assert.equal(after.decision, 'fallback');
  });
});
