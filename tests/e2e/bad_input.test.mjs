// Bad input gets the right 4xx with an OpenAI error object, and the server keeps serving.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, MODEL_NAME } from './server.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { assert.equal(await server.stop(), 0, server.log()); });

async function send(method, route, body, headers = { 'content-type': 'application/json' }) {
  const res = await fetch(`${server.base}${route}`, { method, headers, body });
  const text = await res.text();
  return { status: res.status, text, headers: res.headers };
}

function assertOpenAIError(r, status, param) {
  assert.equal(r.status, status, r.text);
  const j = JSON.parse(r.text);
  assert.equal(typeof j.error, 'object');
  assert.equal(typeof j.error.message, 'string');
  assert.ok(j.error.message.length > 0);
  assert.equal(typeof j.error.type, 'string');
  assert.ok('param' in j.error && 'code' in j.error);
  if (param !== undefined) assert.equal(j.error.param, param, r.text);
}

const ok = { model: MODEL_NAME, prompt: 'Once', max_tokens: 2 };
const chat = { model: MODEL_NAME, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
const cases = [
  ['malformed JSON', '/v1/completions', '{"model": "x", "prompt": ', 400],
  ['body is not an object', '/v1/completions', '[1,2,3]', 400],
  ['missing prompt', '/v1/completions', JSON.stringify({ model: MODEL_NAME }), 400, 'prompt'],
  ['missing messages', '/v1/chat/completions', JSON.stringify({ model: MODEL_NAME }), 400, 'messages'],
  ['missing model', '/v1/completions', JSON.stringify({ prompt: 'x' }), 400, 'model'],
  ['wrong type: max_tokens', '/v1/completions', JSON.stringify({ ...ok, max_tokens: 'ten' }), 400, 'max_tokens'],
  ['wrong type: messages', '/v1/chat/completions', JSON.stringify({ ...chat, messages: 'hi' }), 400, 'messages'],
  ['wrong type: prompt', '/v1/completions', JSON.stringify({ ...ok, prompt: { a: 1 } }), 400, 'prompt'],
  ['negative max_tokens', '/v1/completions', JSON.stringify({ ...ok, max_tokens: -5 }), 400, 'max_tokens'],
  ['huge max_tokens', '/v1/completions', JSON.stringify({ ...ok, max_tokens: 1e12 }), 400, 'max_tokens'],
  ['max_tokens over the context', '/v1/chat/completions', JSON.stringify({ ...chat, max_tokens: 100000 }), 400, 'max_tokens'],
  ['temperature out of range', '/v1/completions', JSON.stringify({ ...ok, temperature: -1 }), 400, 'temperature'],
  ['top_p out of range', '/v1/completions', JSON.stringify({ ...ok, top_p: 1.5 }), 400, 'top_p'],
  ['token id out of vocabulary', '/v1/completions', JSON.stringify({ ...ok, prompt: [1, 99999] }), 400, 'prompt'],
  ['prompt longer than the context', '/v1/completions', JSON.stringify({ ...ok, prompt: 'Once upon a time '.repeat(1000) }), 400, 'prompt'],
  ['n above the limit', '/v1/chat/completions', JSON.stringify({ ...chat, n: 17 }), 400, 'n'],
  ['empty messages', '/v1/chat/completions', JSON.stringify({ ...chat, messages: [] }), 400, 'messages'],
  ['unknown model', '/v1/completions', JSON.stringify({ ...ok, model: 'gpt-17' }), 404, 'model'],
];

for (const [name, route, body, status, param] of cases) {
  test(name, async () => {
    assertOpenAIError(await send('POST', route, body), status, param);
  });
}

test('invalid UTF-8 in a string', async () => {
  const head = Buffer.from(`{"model":"${MODEL_NAME}","prompt":"abc`);
  const body = Buffer.concat([head, Buffer.from([0xff, 0xfe, 0x80]), Buffer.from('","max_tokens":2}')]);
  assertOpenAIError(await send('POST', '/v1/completions', body), 400);
});

test('a 20 MB body is refused with 413', async () => {
  const body = JSON.stringify({ ...ok, prompt: 'a'.repeat(20 * 1024 * 1024) });
  let r;
  try {
    r = await send('POST', '/v1/completions', body);
  } catch (e) {
    // The server may close the connection before reading the whole body; that is a refusal too,
    // but it must still have answered 413 first on a raw socket (checked below).
    r = null;
  }
  if (r) assertOpenAIError(r, 413);
  const raw = await new Promise((resolve, reject) => {
    const sock = net.connect(server.port, '127.0.0.1', () => {
      sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${20 * 1024 * 1024}\r\n\r\n`);
      sock.write('{"prompt":"');
    });
    let data = '';
    sock.on('data', (d) => { data += d.toString(); });
    sock.on('close', () => resolve(data));
    sock.on('error', () => resolve(data));
    setTimeout(() => { sock.destroy(); resolve(data); }, 5000);
  });
  assert.match(raw, /^HTTP\/1\.1 413/);
});

test('unknown route is a 404', async () => {
  assertOpenAIError(await send('GET', '/v1/nothing-here'), 404);
});

test('wrong method is a 405', async () => {
  const r = await send('GET', '/v1/completions');
  assertOpenAIError(r, 405);
});

test('the server still serves after all of that', async () => {
  const r = await send('POST', '/v1/completions', JSON.stringify({ ...ok, temperature: 0 }));
  assert.equal(r.status, 200, r.text);
  assert.equal(JSON.parse(r.text).usage.completion_tokens, 2);
  const h = await send('GET', '/health');
  assert.equal(h.status, 200);
});
