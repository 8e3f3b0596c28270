// Priority classes (issue 29) on the mock engine: 64 low-class (priority 1) streamed completions,
// then 8 high-class (priority 0) ones 50 ms later; prints each class's mean TTFT (wall ms). With
// `fcfs` the same requests carry no priority (the peer). Usage (TURBINE_BIN, TURBINE_SHARED set as
// for tests/e2e/run.sh): node bench/priority_burst.mjs fcfs|priority
import { startServer } from '../tests/e2e/server.mjs';
const policy = process.argv[2];
const s = await startServer(['--engine', 'mock', '--max-num-seqs', '8', '--scheduling-policy', policy]);
async function one(priority) {
  const t0 = performance.now();
  const body = { model: 'stories260K', prompt: 'Once upon a time', max_tokens: 64, stream: true,
    ignore_eos: true };
  if (policy === 'priority') body.priority = priority;
  const r = await fetch(`${s.base}/v1/completions`, { method: 'POST',
    headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (r.status !== 200) throw new Error(await r.text());
  const reader = r.body.getReader();
  let ttft = null;
  for (;;) { const { done } = await reader.read(); if (ttft === null) ttft = performance.now() - t0; if (done) break; }
  return ttft;
}
const low = []; for (let i = 0; i < 64; i++) low.push(one(1));
await new Promise((r) => setTimeout(r, 50));
const high = []; for (let i = 0; i < 8; i++) high.push(one(0));
const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
const h = await Promise.all(high), l = await Promise.all(low);
console.log(policy, 'high-class mean TTFT ms', mean(h).toFixed(0), 'max', Math.max(...h).toFixed(0),
  '| low-class mean TTFT ms', mean(l).toFixed(0));
await s.stop();
