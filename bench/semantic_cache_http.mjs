// Semantic cache hits through HTTP on loopback (issue 21): the time from sending a chat request
// to having read the whole answer when the semantic cache answers it, unary and streamed, beside
// the cheapest route of the same server (GET /health) as the peer, in one run. One keep-alive
// connection, one request at a time.
//
//   build/turbine run --served-model-name stories260K --port 8123 \
//       --semantic-config bench/semantic_cache_http.yaml &
//   node bench/semantic_cache_http.mjs --base http://127.0.0.1:8123 --requests 2000
//
// Prints p50 / p90 / p99 / max per kind, in milliseconds; fails when a "hit" was not one.
import http from 'node:http';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const base = new URL(arg('--base', 'http://127.0.0.1:8000'));
const n = Number(arg('--requests', '2000'));
const model = arg('--model', 'MoM');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function send(method, path, body) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: base.hostname, port: base.port, method, path, agent,
      headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} },
    (res) => {
      let data = '';
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({
        ms: Number(process.hrtime.bigint() - t0) / 1e6, status: res.statusCode, headers: res.headers, data,
      }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const p = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { p50: p(0.5), p90: p(0.9), p99: p(0.99), max: s.at(-1) };
}

const chat = (stream) => JSON.stringify({
  model, max_tokens: 16, temperature: 0, stream,
  messages: [{ role: 'user', content: 'Write one sentence about a lighthouse keeper.' }],
});

// Fill the cache (a live answer), then make sure the next one is a hit.
const live = await send('POST', '/v1/chat/completions', chat(false));
if (live.status !== 200) throw new Error(`live request: ${live.status} ${live.data}`);
const results = {};
for (const [kind, method, path, body] of [
  ['GET /health (peer)', 'GET', '/health', null],
  ['cache hit, unary', 'POST', '/v1/chat/completions', chat(false)],
  ['cache hit, stream', 'POST', '/v1/chat/completions', chat(true)],
]) {
  const ms = [];
  for (let i = 0; i < n + 50; i++) {
    const r = await send(method, path, body);
    if (r.status !== 200) throw new Error(`${kind}: HTTP ${r.status} ${r.data}`);
    if (body && r.headers['x-vsr-cache-hit'] !== 'true') throw new Error(`${kind}: not a cache hit`);
    if (i >= 50) ms.push(r.ms);  // 50 warm-up requests
  }
  results[kind] = stats(ms);
}
console.log(`${n} requests each, one keep-alive connection, ${base.href}`);
console.log('| request | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|');
for (const [kind, s] of Object.entries(results)) {
  console.log(`| ${kind} | ${s.p50.toFixed(3)} | ${s.p90.toFixed(3)} | ${s.p99.toFixed(3)} | ${s.max.toFixed(3)} |`);
}
agent.destroy();
