// deploy/docker/compose.yaml: parses, agrees with the Helm chart (same flags, images, endpoints),
// uses only flags the turbine binary accepts, and its one-process `standalone` service, started as a
// plain process with the same settings, serves a request end to end. The etcd + NATS + frontend +
// worker services get the same treatment once `turbine frontend` and `turbine worker` exist and
// etcd/nats-server are installed (skipped, with the reason, until then).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { byKindName, chartDir, container, flags, render, repo, skipMissing } from "./lib.mjs";
import { scrapeText } from "../e2e/prometheus.mjs";

const composeFile = path.join(repo, "deploy/docker/compose.yaml");
const compose = YAML.parse(fs.readFileSync(composeFile, "utf8"), { merge: true });
const chartValues = YAML.parse(fs.readFileSync(path.join(chartDir, "values.yaml"), "utf8"));
const turbineBin = path.resolve(repo, process.env.TURBINE_BIN ?? "build/turbine");
const shared = path.resolve(repo, process.env.TURBINE_SHARED ?? "../shared");
const haveBin = fs.existsSync(turbineBin);

function help(sub) {
  const r = spawnSync(turbineBin, sub ? [sub, "--help"] : ["--help"], { encoding: "utf8" });
  return r.stdout + r.stderr;
}
// Subcommands listed by `turbine --help` (CLI11 prints unknown subcommands' help as the top level).
function subcommands() {
  const text = help();
  const section = text.split(/^Subcommands:$/m)[1] ?? "";
  return new Set([...section.matchAll(/^\s{2}([a-z][a-z-]*)\s/gm)].map((m) => m[1]));
}
function acceptedFlags(sub) {
  return new Set([...help(sub).matchAll(/(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]));
}

test("compose.yaml: etcd, NATS with JetStream, frontend and a CPU worker on stories260K", () => {
  const s = compose.services;
  assert.deepEqual(Object.keys(s).sort(), ["etcd", "frontend", "nats", "standalone", "worker"]);
  assert.ok(s.nats.command.includes("--jetstream"));
  assert.deepEqual(s.standalone.profiles, ["standalone"]);
  assert.equal(s.frontend.command[0], "frontend");
  assert.equal(s.worker.command[0], "worker");
  assert.equal(s.standalone.command[0], "run");
  const wf = flags(s.worker.command);
  assert.equal(wf["--device"], "cpu");
  assert.equal(wf["--model"], "/models/stories260K/stories260K.gguf");
  // The model volume: the shared folder's models/ mounted read-only where the commands look.
  for (const name of ["frontend", "worker", "standalone"]) {
    assert.ok(s[name].volumes.some((v) => /\/models:\/models:ro$/.test(v)), `${name} lacks the models volume`);
    assert.equal(s[name].user, "10001:10001");
  }
  // The frontend publishes the port it listens on; etcd and NATS URLs name the services and ports
  // they listen on.
  const ff = flags(s.frontend.command);
  assert.ok(s.frontend.ports.includes(`${ff["--port"]}:${ff["--port"]}`));
  assert.ok(s.worker.ports.includes(`${wf["--status-port"]}:${wf["--status-port"]}`));
  for (const f of [ff, wf]) {
    assert.equal(f["--etcd-endpoints"], "http://etcd:2379");
    assert.equal(f["--nats-url"], "nats://nats:4222");
    assert.equal(f["--discovery"], "etcd");
  }
  assert.ok(s.etcd.command.includes("--listen-client-urls=http://0.0.0.0:2379"));
  assert.ok(s.nats.command.includes("--port=4222"));
  for (const name of ["frontend", "worker"]) {
    assert.equal(s[name].depends_on.etcd.condition, "service_healthy");
    assert.equal(s[name].depends_on.nats.condition, "service_healthy");
  }
});

test("compose.yaml and the Helm chart run the same images and flags", () => {
  const s = compose.services;
  assert.equal(s.etcd.image, `${chartValues.etcd.image.repository}:${chartValues.etcd.image.tag}`);
  assert.equal(s.nats.image, `${chartValues.nats.image.repository}:${chartValues.nats.image.tag}`);
  const chartAppVersion = YAML.parse(fs.readFileSync(path.join(chartDir, "Chart.yaml"), "utf8")).appVersion;
  assert.match(s.frontend.image, new RegExp(`:-turbine:${chartAppVersion.replace(/\./g, "\\.")}}$`));
  const m = byKindName(render());
  const chartFe = flags(container(m.get("Deployment/turbine-frontend")).args);
  const chartWorker = flags(container(m.get("Deployment/turbine-worker")).args);
  assert.deepEqual(Object.keys(flags(s.frontend.command)).sort(), Object.keys(chartFe).sort());
  // A CPU worker: the chart's flags less the GPU-only ones, which only a CUDA device takes.
  const cpuOnly = Object.keys(chartWorker).filter((f) => !["--gpu-memory-utilization", "--tensor-parallel-size"].includes(f));
  assert.deepEqual(Object.keys(flags(s.worker.command)).sort(), cpuOnly.sort());
  assert.equal(flags(s.frontend.command)["--namespace"], chartFe["--namespace"]);
  assert.equal(flags(s.frontend.command)["--router-mode"], chartFe["--router-mode"]);
  assert.equal(flags(s.worker.command)["--status-port"], chartWorker["--status-port"]);
});

for (const svc of ["standalone", "frontend", "worker"]) {
  test(`compose.yaml's ${svc} command uses only flags \`turbine ${compose.services[svc].command[0]} --help\` lists`, (t) => {
    if (!haveBin) return t.skip(`${turbineBin} is not built`);
    const sub = compose.services[svc].command[0];
    if (!subcommands().has(sub)) return t.skip(`\`turbine ${sub}\` does not exist yet in ${turbineBin}`);
    const accepted = acceptedFlags(sub);
    const used = Object.keys(flags(compose.services[svc].command));
    assert.deepEqual(used.filter((f) => !accepted.has(f)), [], `flags turbine ${sub} does not know`);
  });
}

test("the chart's frontend and worker flags are all known to the binary", (t) => {
  if (!haveBin) return t.skip(`${turbineBin} is not built`);
  const have = subcommands();
  const missing = ["frontend", "worker"].filter((s) => !have.has(s));
  if (missing.length) return t.skip(`\`turbine ${missing.join("`, `turbine ")}\` not implemented yet`);
  const m = byKindName(render("three-nodes"));
  for (const [sub, dep] of [["frontend", "Deployment/turbine-frontend"], ["worker", "Deployment/turbine-decode"]]) {
    const accepted = acceptedFlags(sub);
    const used = Object.keys(flags(container(m.get(dep)).args));
    assert.deepEqual(used.filter((f) => !accepted.has(f)), [], `chart passes flags turbine ${sub} does not know`);
  }
});

// ---- end to end, as plain processes ----

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// A compose command with service names, container paths and ports rewritten for this machine.
function localize(args, rewrites) {
  return args.map((a) => rewrites.reduce((s, [from, to]) => s.split(from).join(to), a));
}

function start(bin, args, name, procs) {
  const p = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  p.stdout.on("data", (d) => (log += d));
  p.stderr.on("data", (d) => (log += d));
  p.logTail = () => `${name}: ${log.slice(-2000)}`;
  procs.push(p);
  return p;
}

async function waitFor(url, procs, ok = (r) => r.ok, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const p of procs) {
      if (p.exitCode !== null) throw new Error(`process exited early (${p.exitCode})\n${p.logTail()}`);
    }
    try {
      const r = await fetch(url);
      if (await ok(r)) return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url} not ready\n${procs.map((p) => p.logTail()).join("\n")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stop(procs) {
  await Promise.all(procs.map((p) => new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    const timer = setTimeout(() => p.kill("SIGKILL"), 10000);
    p.on("exit", () => { clearTimeout(timer); resolve(); });
    p.kill("SIGTERM");
  })));
}

async function completion(port) {
  const r = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "stories260K", prompt: "Once upon a time", max_tokens: 16, temperature: 0 }),
  });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  assert.equal(body.object, "text_completion");
  assert.ok(body.choices[0].text.length > 0);
  assert.equal(body.usage.completion_tokens, 16);
  return body;
}

// Metric names the dashboard queries that src/metrics/metrics.h defines.
function existingDashboardMetrics() {
  const header = fs.readFileSync(path.join(repo, "src/metrics/metrics.h"), "utf8");
  const defined = new Set([...header.matchAll(/"(turbine_[a-z0-9_]+)"/g)].map((m) => m[1]));
  const dash = fs.readFileSync(path.join(repo, "deploy/grafana/turbine-dashboard.json"), "utf8");
  const used = new Set([...dash.matchAll(/turbine_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, "")));
  return [...used].filter((n) => defined.has(n));
}

test("compose.yaml's standalone service, run as a plain process, serves a completion and the dashboard's metrics", async (t) => {
  if (!haveBin) return t.skip(`${turbineBin} is not built`);
  const model = path.join(shared, "models/stories260K/stories260K.gguf");
  if (!fs.existsSync(model)) return skipMissing(t, `${model} missing (set TURBINE_SHARED)`);
  const port = await freePort();
  const args = localize(compose.services.standalone.command, [["/models/", `${path.join(shared, "models")}/`]]);
  const f = flags(args);
  args[args.indexOf("--port") + 1] = String(port);
  assert.equal(f["--model"], model);
  const procs = [];
  try {
    start(turbineBin, [...args, "--threads", "1"], "standalone", procs);
    await waitFor(`http://127.0.0.1:${port}/health`, procs);
    await completion(port);
    const live = await fetch(`http://127.0.0.1:${port}/live`);
    assert.equal(live.status, 200);
    const text = await scrapeText(`http://127.0.0.1:${port}/metrics`);
    // One worker is served without a router in the path: the router's series (decisions, cached
    // blocks, per-worker load, migrations) come with `--workers N` or a frontend, and the per-
    // transport KV series with a decode worker that has a transport (disaggregated serving); the
    // planner's series are on `turbine planner`'s status port (tests/e2e/planner.test.mjs).
    const routerOnly = /^turbine_(router_|frontend_worker_|frontend_cached_tokens$|frontend_model_migration_|kv_transport_|planner_)/;
    const missing = existingDashboardMetrics().filter((n) => !routerOnly.test(n))
      .filter((n) => !new RegExp(`^${n}(_bucket|_sum|_count)?[{ ]`, "m").test(text));
    assert.deepEqual(missing, [], "metrics the dashboard queries are missing from /metrics");
    const ok = text.match(/^turbine_frontend_requests_total\{[^}]*status="success"[^}]*\} (\d+)/m);
    assert.ok(ok && Number(ok[1]) === 1, "one successful request counted");
    const ttft = text.match(/^turbine_frontend_time_to_first_token_seconds_count\{[^}]*\} (\d+)/m);
    assert.equal(Number(ttft[1]), 1);
  } finally {
    await stop(procs);
  }
});

function which(cmd) {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

test("compose.yaml's etcd + NATS + frontend + worker, run as plain processes, serve a completion", async (t) => {
  if (!haveBin) return t.skip(`${turbineBin} is not built`);
  const have = subcommands();
  const missing = ["frontend", "worker"].filter((s) => !have.has(s));
  if (missing.length) return t.skip(`\`turbine ${missing.join("`, `turbine ")}\` not implemented yet`);
  const etcd = which("etcd");
  const nats = which("nats-server");
  if (!etcd || !nats) return skipMissing(t, "etcd and nats-server are not installed (scripts/install-deps installs them with the runtime)");
  const [etcdPort, etcdPeer, natsPort, fePort, statusPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "turbine-compose-"));
  const s = compose.services;
  const rewrites = [
    ["http://etcd:2379", `http://127.0.0.1:${etcdPort}`],
    ["nats://nats:4222", `nats://127.0.0.1:${natsPort}`],
    ["/models/", `${path.join(shared, "models")}/`],
  ];
  const fe = localize(s.frontend.command, rewrites);
  fe[fe.indexOf("--port") + 1] = String(fePort);
  fe[fe.indexOf("--host") + 1] = "127.0.0.1";
  const worker = localize(s.worker.command, rewrites);
  worker[worker.indexOf("--status-port") + 1] = String(statusPort);
  const procs = [];
  try {
    start(etcd, ["--name=etcd", `--data-dir=${dir}/etcd`, `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`, `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`, `--initial-cluster=etcd=http://127.0.0.1:${etcdPeer}`], "etcd", procs);
    start(nats, ["--addr=127.0.0.1", `--port=${natsPort}`, "--jetstream", `--store_dir=${dir}/nats`], "nats", procs);
    await waitFor(`http://127.0.0.1:${etcdPort}/health`, procs);
    start(turbineBin, worker, "worker", procs);
    start(turbineBin, fe, "frontend", procs);
    await waitFor(`http://127.0.0.1:${statusPort}/live`, procs, (r) => r.ok, 60000);
    await waitFor(`http://127.0.0.1:${fePort}/v1/models`, procs,
      async (r) => r.ok && (await r.json()).data?.length > 0, 60000);
    await completion(fePort);
    const workerMetrics = await scrapeText(`http://127.0.0.1:${statusPort}/metrics`);
    assert.match(workerMetrics, /^turbine_engine_kv_total_blocks\{/m);
  } finally {
    await stop(procs);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
