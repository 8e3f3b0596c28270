// `turbine doctor` as a user runs it: the table, --json, and the exit code (1 exactly when a check
// fails). The checks themselves are unit-tested in tests/unit/doctor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { MODEL } from './server.mjs';

const bin = process.env.TURBINE_BIN;
const doctor = (args) => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TURBINE_')));
  const r = spawnSync(bin, ['doctor', '--kubectl', '/nonexistent', ...args], { encoding: 'utf8', env, timeout: 60000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

test('a healthy host with stories260K: a table of every check, exit 0', () => {
  const r = doctor(['--model', MODEL, '--port', '0']);
  assert.equal(r.code, 0, r.out + r.err);
  const lines = r.out.trim().split('\n');
  assert.match(lines[0], /^STATUS\s+CHECK\s+RESULT$/);
  assert.match(r.out, /^PASS\s+model\.files\s+stories260K\.gguf/m);
  assert.match(r.out, /^PASS\s+model\.fit\s+weights .* <= budget/m);
  assert.match(r.out, /^PASS\s+loopback\.kv_transfer\s+64\.0 MiB in 32 blocks fetched over 127\.0\.0\.1 at [\d.]+ GB\/s/m);
  assert.match(r.out, /^SKIP\s+etcd\.lease\s+no --etcd-endpoints given/m);
  assert.match(lines.at(-1), /^0 failed, \d+ warnings, \d+ passed, \d+ info, \d+ skipped$/);
});

test('--json: the documented schema; a port in use fails the run with exit 1', async () => {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '0.0.0.0', r));
  try {
    const r = doctor(['--json', '--no-loopback', '--port', String(srv.address().port)]);
    assert.equal(r.code, 1);
    const report = JSON.parse(r.out);
    assert.equal(report.schema, 'turbine-doctor/1');
    assert.equal(report.ok, false);
    assert.equal(report.counts.fail, 1);
    const ports = report.checks.find((c) => c.id === 'net.ports');
    assert.equal(ports.status, 'fail');
    assert.equal(ports.details.in_use[0].port, srv.address().port);
    assert.equal(report.checks.find((c) => c.id === 'model.files').status, 'skip');
  } finally {
    srv.close();
  }
});

test('a model that does not fit the GPU budget fails with the numbers', () => {
  const r = doctor(['--json', '--no-loopback', '--port', '0', '--model', MODEL, '--gpu-memory', '1000000',
    '--gpu-memory-utilization', '0.5']);
  assert.equal(r.code, 1);
  const fit = JSON.parse(r.out).checks.find((c) => c.id === 'model.fit');
  assert.equal(fit.status, 'fail');
  assert.equal(fit.details.budget_bytes, 500000);
  assert.ok(fit.details.required_bytes > 500000);
  assert.match(fit.summary, /> budget/);
});
