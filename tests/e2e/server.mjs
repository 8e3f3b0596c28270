// Starts a turbine server on a free port for a test file and stops it afterwards.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { scrapeText } from './prometheus.mjs';

export const SHARED = process.env.TURBINE_SHARED;
export const MODEL = path.join(SHARED, 'models/stories260K/stories260K.gguf');
export const MODEL_NAME = 'stories260K';

export async function startServer(extraArgs = [], env = {}) {
  const bin = process.env.TURBINE_BIN;
  if (!bin) throw new Error('TURBINE_BIN is not set (run through tests/e2e/run.sh)');
  const args = ['run', '--model', MODEL, '--served-model-name', MODEL_NAME, '--host', '127.0.0.1',
    '--port', '0', ...extraArgs];
  const proc = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start:\n' + log)), 30000);
    const onData = (d) => {
      log += d.toString();
      const m = log.match(/serving .* on http:\/\/[^:]+:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}):\n${log}`)); });
  });
  proc.stdout.on('data', (d) => { log += d.toString(); });
  proc.stderr.on('data', (d) => { log += d.toString(); });
  const base = `http://127.0.0.1:${port}`;
  return {
    port, base, proc,
    log: () => log,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      const exited = new Promise((r) => proc.once('exit', (code) => r(code)));
      proc.kill('SIGTERM');
      return exited;
    },
  };
}

// Reads one metric sample (first series whose name and labels start with `prefix`).
export async function metric(base, prefix) {
  const text = await scrapeText(`${base}/metrics`);
  for (const line of text.split('\n')) {
    if (line.startsWith(prefix)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}
