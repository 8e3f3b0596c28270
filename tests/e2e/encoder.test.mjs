// Encoder models end to end (issue 27): `turbine run --model <encoder fixture folder>` serves
// /v1/embeddings to the official openai client (float, base64, the client's default, dimensions,
// token ids), /classify (labels, entities), /v1/rerank and /v1/score over plain HTTP, clear 400s
// for bad input and for the wrong endpoint; and `turbine frontend` + encoder workers (etcd, NATS)
// routes the encoder endpoints to them and never generation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { Cluster, haveBinaries, waitFor } from './cluster.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.join(HERE, '..', 'fixtures', 'encoders');

// `turbine run` on one encoder folder; resolves once it serves.
async function startEncoder(folder, name) {
  const proc = spawn(process.env.TURBINE_BIN,
    ['run', '--model', path.join(FIXTURES, folder), '--served-model-name', name, '--host',
      '127.0.0.1', '--port', '0', '--threads', '1'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${log}`)), 30000);
    const onData = (d) => {
      log += d.toString();
      const m = log.match(/serving .* on http:\/\/[^:]+:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited (${code}):\n${log}`)); });
  });
  return {
    base: `http://127.0.0.1:${port}`,
    log: () => log,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      const exited = new Promise((r) => proc.once('exit', (code) => r(code)));
      proc.kill('SIGTERM');
      return exited;
    },
  };
}

async function post(base, route, body) {
  const r = await fetch(`${base}${route}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const words = (n) => Array.from({ length: n }, (_, i) => (i % 2 ? 'river' : 'bank')).join(' ');

function decodeBase64(s) {
  const b = Buffer.from(s, 'base64');
  return Array.from(new Float32Array(b.buffer, b.byteOffset, b.length / 4));
}

// Compared as float32: JSON carries each float's shortest round-trip text, base64 its exact bits.
function assertClose(a, b, tol = 1e-6) {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    const x = Math.fround(a[i]), y = Math.fround(b[i]);
    assert.ok(Math.abs(x - y) <= tol, `${i}: ${a[i]} vs ${b[i]}`);
  }
}

describe('turbine run with encoder models', { timeout: 120000 }, () => {
  const s = {};
  let client;

  before(async () => {
    [s.emb, s.cls, s.ner, s.rerank] = await Promise.all([
      startEncoder('bert', 'bert-emb'), startEncoder('bert_cls', 'bert-cls'),
      startEncoder('bert_ner', 'bert-ner'), startEncoder('xlmr_rerank', 'rerank')]);
    client = new OpenAI({ baseURL: `${s.emb.base}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    for (const srv of Object.values(s)) assert.equal(await srv.stop(), 0);
  });

  test('embeddings.create: float, base64, the client default and dimensions', async () => {
    const texts = ['Hello world!', 'The quick brown fox jumps over the lazy dog.'];
    const f = await client.embeddings.create({ model: 'bert-emb', input: texts, encoding_format: 'float' });
    assert.equal(f.object, 'list');
    assert.equal(f.model, 'bert-emb');
    assert.equal(f.data.length, 2);
    assert.equal(f.data[1].index, 1);
    assert.equal(f.data[0].embedding.length, 32);
    assert.ok(Math.abs(norm(f.data[0].embedding) - 1) < 1e-5);  // the fixture's Normalize module
    assert.ok(f.usage.prompt_tokens > 4);
    assert.equal(f.usage.total_tokens, f.usage.prompt_tokens);

    // Asked for base64, the client hands the string over as sent.
    const b = await client.embeddings.create({ model: 'bert-emb', input: texts, encoding_format: 'base64' });
    assertClose(decodeBase64(b.data[1].embedding), f.data[1].embedding, 0);
    // Without encoding_format the client asks for base64 and decodes it itself.
    const d = await client.embeddings.create({ model: 'bert-emb', input: texts });
    assertClose(d.data[0].embedding, f.data[0].embedding, 0);

    // Matryoshka: the first 8 values, renormalised.
    const m = await client.embeddings.create({ model: 'bert-emb', input: texts[0], dimensions: 8, encoding_format: 'float' });
    assert.equal(m.data[0].embedding.length, 8);
    assert.ok(Math.abs(norm(m.data[0].embedding) - 1) < 1e-5);
    const head = f.data[0].embedding.slice(0, 8);
    assertClose(m.data[0].embedding, head.map((x) => x / norm(head)), 1e-5);
  });

  test('token-id inputs give the vectors of the text they came from', async () => {
    const tok = await post(s.emb.base, '/tokenize', { model: 'bert-emb', prompt: 'Hello world!' });
    // Encoder models have no /tokenize (their workers tokenize): a 400 saying what to use.
    assert.equal(tok.status, 400);
    const ids = [2, 333, 210, 5, 3];  // "Hello world!" (tests/fixtures/encoders/bert/expected.json)
    const r = await client.embeddings.create({ model: 'bert-emb', input: [ids, ids], encoding_format: 'float' });
    const t = await client.embeddings.create({ model: 'bert-emb', input: 'Hello world!', encoding_format: 'float' });
    assertClose(r.data[1].embedding, t.data[0].embedding, 1e-6);
  });

  test('bad input is a clear 400 through the client', async () => {
    const cases = [
      [{ input: [] }, /input must not be empty/],
      [{ input: ['a', ''] }, /input\[1\] is empty/],
      [{ input: words(100) }, /maximum of 64/],
      [{ input: 'x', dimensions: 33 }, /dimensions/],
      [{ input: [[1, 2, 99999]] }, /out of range/],
    ];
    for (const [body, re] of cases) {
      await assert.rejects(client.embeddings.create({ model: 'bert-emb', encoding_format: 'float', ...body }),
        (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && re.test(e.message), JSON.stringify(body).slice(0, 80));
    }
    // Truncation on request instead of the 400.
    const cut = await post(s.emb.base, '/v1/embeddings', { model: 'bert-emb', input: words(100), truncate_prompt_tokens: -1 });
    assert.equal(cut.status, 200);
    assert.equal(cut.body.usage.prompt_tokens, 64);
    const ten = await post(s.emb.base, '/v1/embeddings', { model: 'bert-emb', input: words(100), truncate_prompt_tokens: 10 });
    assert.equal(ten.body.usage.prompt_tokens, 10);
    const many = await post(s.emb.base, '/v1/embeddings', { model: 'bert-emb', input: Array(3000).fill('a') });
    assert.equal(many.status, 400);
    assert.match(many.body.error.message, /too many inputs/);
    assert.equal(many.body.error.param, 'input');
  });

  test('a generative endpoint on an encoder model is a 400 that says why', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'bert-emb', messages: [{ role: 'user', content: 'hi' }] }),
      (e) => e.status === 400 && /embedding model/.test(e.message) && /\/v1\/embeddings/.test(e.message));
    const c = await post(s.cls.base, '/v1/completions', { model: 'bert-cls', prompt: 'hi' });
    assert.equal(c.status, 400);
    assert.match(c.body.error.message, /\/classify/);
    // And an encoder endpoint the model's task does not serve.
    const e = await post(s.cls.base, '/v1/embeddings', { model: 'bert-cls', input: 'hi' });
    assert.equal(e.status, 400);
    assert.match(e.body.error.message, /is a classification model/);
    const models = await (await fetch(`${s.emb.base}/v1/models`)).json();
    assert.deepEqual(models.data.map((m) => m.id), ['bert-emb']);
  });

  test('/classify: labels from id2label, entities for token classifiers', async () => {
    const r = await post(s.cls.base, '/classify', { model: 'bert-cls', input: ['Hello world!', 'The quick brown fox.'] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.data.length, 2);
    for (const d of r.body.data) {
      assert.ok(['negative', 'neutral', 'positive'].includes(d.label));
      assert.equal(d.num_classes, 3);
      assert.ok(Math.abs(d.probs.reduce((a, x) => a + x, 0) - 1) < 1e-5);
    }
    assert.ok(r.body.usage.prompt_tokens > 0);
    const n = await post(s.ner.base, '/classify', { model: 'bert-ner', input: 'John Smith lives in Paris and works at Acme.' });
    assert.equal(n.status, 200, JSON.stringify(n.body));
    for (const e of n.body.data[0].entities) {
      assert.ok(['PER', 'LOC', 'ORG'].includes(e.entity_group));
      assert.ok(e.start < e.end);
    }
  });

  test('rerank (Cohere/Jina shape) and score over plain HTTP', async () => {
    const docs = ['Paris is the capital and largest city of France.', 'The quick brown fox jumps over the lazy dog.', 'Berlin'];
    for (const route of ['/v1/rerank', '/rerank']) {
      const r = await post(s.rerank.base, route, { model: 'rerank', query: 'what is the capital of france?', documents: docs, top_n: 2 });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.results.length, 2);
      assert.ok(r.body.results[0].relevance_score >= r.body.results[1].relevance_score);
      assert.equal(r.body.results[0].document.text, docs[r.body.results[0].index]);
      assert.ok(r.body.usage.total_tokens > 0);
    }
    const all = await post(s.rerank.base, '/v1/rerank', { model: 'rerank', query: 'q', documents: docs.map((text) => ({ text })), return_documents: false });
    assert.equal(all.body.results.length, 3);
    assert.equal(all.body.results[0].document, undefined);
    const sc = await post(s.rerank.base, '/v1/score', { model: 'rerank', text_1: 'what is the capital of france?', text_2: docs });
    assert.equal(sc.status, 200, JSON.stringify(sc.body));
    assert.equal(sc.body.data.length, 3);
    // The same scores as the rerank.
    const rr = await post(s.rerank.base, '/v1/rerank', { model: 'rerank', query: 'what is the capital of france?', documents: docs });
    for (const x of rr.body.results) assert.ok(Math.abs(x.relevance_score - sc.body.data[x.index].score) < 1e-6);
    // An embedding model reranks by cosine similarity.
    const emb = await post(s.emb.base, '/v1/rerank', { model: 'bert-emb', query: 'river bank', documents: ['river bank', 'Acme'] });
    assert.equal(emb.status, 200);
    assert.equal(emb.body.results[0].index, 0);
    assert.ok(Math.abs(emb.body.results[0].relevance_score - 1) < 1e-5);
    const bad = await post(s.rerank.base, '/v1/rerank', { model: 'rerank', query: 'q', documents: ['a', ''] });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.param, 'documents');
    assert.match(bad.body.error.message, /documents\[1\] is empty/);
  });
});

const skip = haveBinaries() ? false : 'etcd or nats-server is not installed (scripts/install-deps)';

describe('turbine frontend with encoder workers', { skip, timeout: 120000 }, () => {
  const c = new Cluster({ leaseTtl: 3 });
  let local;

  before(async () => {
    await c.startEtcd();
    await c.startNats();
    await c.startFrontend();
    const bert = path.join(FIXTURES, 'bert');
    await c.startWorker([], { model: bert, name: 'bert-emb' });
    await c.startWorker([], { model: bert, name: 'bert-emb' });
    await c.startWorker();  // stories260K: generation
    await waitFor(async () => (await c.models()).length === 2, 15000, 'both models in /v1/models');
    local = await startEncoder('bert', 'bert-emb');
  });
  after(async () => {
    await c.stopAll();
    if (local) await local.stop();
  });

  test('embeddings through the frontend equal a local run; generation still works', async () => {
    assert.deepEqual((await c.models()).sort(), ['bert-emb', 'stories260K']);
    const body = { model: 'bert-emb', input: ['Hello world!', 'river bank'], encoding_format: 'float' };
    const remote = await post(c.base, '/v1/embeddings', body);
    assert.equal(remote.status, 200, JSON.stringify(remote.body));
    const mine = await post(local.base, '/v1/embeddings', body);
    for (let i = 0; i < 2; i++) assertClose(remote.body.data[i].embedding, mine.body.data[i].embedding, 0);
    const g = await post(c.base, '/v1/completions', { model: 'stories260K', prompt: 'Once upon a time', max_tokens: 4 });
    assert.equal(g.status, 200);
    // Never generation on the encoder workers; never embeddings on the generative one.
    const wrong = await post(c.base, '/v1/chat/completions', { model: 'bert-emb', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(wrong.status, 400);
    assert.match(wrong.body.error.message, /\/v1\/embeddings/);
    const wrong2 = await post(c.base, '/v1/embeddings', { model: 'stories260K', input: 'hi' });
    assert.equal(wrong2.status, 400);
    assert.match(wrong2.body.error.message, /generative model/);
    // A worker's validation error crosses the request plane with its param.
    const bad = await post(c.base, '/v1/embeddings', { model: 'bert-emb', input: ['a', ''] });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.param, 'input');
  });

  test('both encoder workers serve, and one killed leaves the other serving', async () => {
    const calls = Array.from({ length: 24 }, (_, i) => post(c.base, '/v1/embeddings', { model: 'bert-emb', input: `text ${i}` }));
    for (const r of await Promise.all(calls)) assert.equal(r.status, 200);
    for (const w of c.workers.slice(0, 2)) assert.match(w.log, /encoder worker [0-9a-f]+ serving/);
    await c.workers[0].kill('SIGKILL');
    for (let i = 0; i < 6; i++) {
      const r = await post(c.base, '/v1/embeddings', { model: 'bert-emb', input: `after ${i}` });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
  });
});
