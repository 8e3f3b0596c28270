// deploy/docker/compose.observability.yaml (with compose.yaml): structure checked like compose.yaml's
// (docker compose is not available here); Prometheus scrapes the ports compose.yaml starts turbine
// and etcd with, at the path the binary serves, and the series there include what the dashboard
// queries; Grafana provisions the dashboard with a Prometheus data source of the type its
// `datasource` variable asks for; traces go to Tempo's OTLP/HTTP port as the binary exports them
// (POST <endpoint>/v1/traces, checked against a local receiver); nats-server.conf is valid for the
// real nats-server and gives what `turbine doctor` wants (JetStream, >= 8 MiB payload).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { flags, repo, skipMissing } from "./lib.mjs";

const dockerDir = path.join(repo, "deploy/docker");
const base = YAML.parse(fs.readFileSync(path.join(dockerDir, "compose.yaml"), "utf8"), { merge: true });
const overlay = YAML.parse(fs.readFileSync(path.join(dockerDir, "compose.observability.yaml"), "utf8"), { merge: true });
const prom = YAML.parse(fs.readFileSync(path.join(dockerDir, "observability/prometheus.yml"), "utf8"));
const tempo = YAML.parse(fs.readFileSync(path.join(dockerDir, "observability/tempo.yaml"), "utf8"));
const datasources = YAML.parse(fs.readFileSync(path.join(dockerDir, "observability/grafana/datasources.yaml"), "utf8"));
const providers = YAML.parse(fs.readFileSync(path.join(dockerDir, "observability/grafana/dashboards.yaml"), "utf8"));
const dashboard = JSON.parse(fs.readFileSync(path.join(repo, "deploy/grafana/turbine-dashboard.json"), "utf8"));
const turbineBin = path.resolve(repo, process.env.TURBINE_BIN ?? "build/turbine");
const shared = path.resolve(repo, process.env.TURBINE_SHARED ?? "../shared");
const haveBin = fs.existsSync(turbineBin);

// compose's merge of the two files for the keys used here (services' maps merge, lists replace).
const merged = structuredClone(base.services);
for (const [name, svc] of Object.entries(overlay.services)) {
  merged[name] = { ...(merged[name] ?? {}), ...svc };
  if (base.services[name]?.environment && svc.environment) {
    merged[name].environment = { ...base.services[name].environment, ...svc.environment };
  }
}
// "host:container[:mode]" volume -> the host path, relative to deploy/docker.
const hostPath = (v) => path.resolve(dockerDir, v.split(":")[0]);
const mountOf = (svc, containerPath) => merged[svc].volumes.find((v) => v.split(":")[1] === containerPath);
const targets = (job) => prom.scrape_configs.find((j) => j.job_name === job).static_configs.flatMap((s) => s.targets);

test("the overlay adds Prometheus, Grafana and Tempo under the observability profile and DCGM under gpu", () => {
  assert.equal(overlay.name, base.name);
  const added = Object.keys(overlay.services).filter((s) => !base.services[s]);
  assert.deepEqual(added.sort(), ["dcgm-exporter", "grafana", "prometheus", "tempo"]);
  for (const s of ["prometheus", "grafana", "tempo"]) assert.deepEqual(overlay.services[s].profiles, ["observability"]);
  assert.deepEqual(overlay.services["dcgm-exporter"].profiles, ["gpu"]);
  // The base services it touches keep their profile-less defaults (it only adds settings).
  for (const s of ["nats", "frontend", "worker"]) assert.equal(overlay.services[s].profiles, undefined);
  assert.equal(overlay.services["dcgm-exporter"].deploy.resources.reservations.devices[0].driver, "nvidia");
});

test("every service is well-formed: pinned images, host:container ports, existing mounted files, known dependencies", () => {
  for (const [name, s] of Object.entries(merged)) {
    const image = (s.image ?? "").replace(/^\$\{[A-Z_]+:-([^}]+)\}$/, "$1");  // ${VAR:-default}
    assert.match(image, /^[\w./-]+:[\w.-]+$/, `${name}: image ${s.image} has no tag`);
    assert.doesNotMatch(image, /:latest$/, `${name}: unpinned image`);
    for (const p of s.ports ?? []) assert.match(p, /^\d+:\d+$/, `${name}: port ${p}`);
    for (const v of s.volumes ?? []) {
      if (!v.startsWith(".")) continue;  // named volumes and ${TURBINE_SHARED}
      assert.ok(fs.existsSync(hostPath(v)), `${name}: ${v} does not exist`);
      assert.match(v, /:ro$/, `${name}: ${v} should be read-only`);
    }
    const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
    for (const d of deps) assert.ok(merged[d], `${name} depends on unknown ${d}`);
  }
  // What `--profile observability --profile gpu` starts: services without a profile, and those.
  const active = Object.values(merged).filter((s) => !s.profiles || s.profiles.some((p) => ["observability", "gpu"].includes(p)));
  const published = active.flatMap((s) => (s.ports ?? []).map((p) => p.split(":")[0]));
  assert.equal(new Set(published).size, published.length, `a host port published twice: ${published}`);
});

test("Prometheus scrapes the frontend, the worker and etcd on the ports compose.yaml gives them", () => {
  const fe = flags(base.services.frontend.command);
  const wk = flags(base.services.worker.command);
  assert.deepEqual(targets("turbine-frontend"), [`frontend:${fe["--port"]}`]);
  assert.deepEqual(targets("turbine-worker"), [`worker:${wk["--status-port"]}`]);
  const etcdMetrics = base.services.etcd.command.find((a) => a.startsWith("--listen-metrics-urls="));
  assert.deepEqual(targets("etcd"), [`etcd:${etcdMetrics.split(":").pop()}`]);
  assert.deepEqual(targets("dcgm"), [`dcgm-exporter:${overlay.services["dcgm-exporter"].ports[0].split(":")[1]}`]);
  for (const j of prom.scrape_configs.filter((j) => j.job_name.startsWith("turbine-"))) assert.equal(j.metrics_path, "/metrics");
  assert.equal(mountOf("prometheus", "/etc/prometheus/prometheus.yml") !== undefined, true);
  assert.ok(overlay.services.prometheus.command.includes("--config.file=/etc/prometheus/prometheus.yml"));
});

test("Grafana provisions the Turbine dashboard with a Prometheus data source its variable accepts, and Tempo", () => {
  const dsVar = dashboard.templating.list.find((v) => v.name === "datasource");
  assert.equal(dsVar.type, "datasource");
  const promDs = datasources.datasources.find((d) => d.type === dsVar.query);
  assert.ok(promDs, `no data source of type ${dsVar.query}`);
  assert.equal(promDs.isDefault, true);
  assert.equal(promDs.url, `http://prometheus:${overlay.services.prometheus.ports[0].split(":")[1]}`);
  const tempoDs = datasources.datasources.find((d) => d.type === "tempo");
  assert.equal(tempoDs.url, `http://tempo:${tempo.server.http_listen_port}`);
  const dashMount = mountOf("grafana", "/var/lib/grafana/dashboards/turbine-dashboard.json");
  assert.equal(hostPath(dashMount), path.join(repo, "deploy/grafana/turbine-dashboard.json"));
  assert.equal(providers.providers[0].options.path, "/var/lib/grafana/dashboards");
  for (const f of ["datasources", "dashboards"]) {
    assert.ok(mountOf("grafana", `/etc/grafana/provisioning/${f}/turbine.yaml`), `${f} provisioning not mounted`);
  }
});

test("the frontend and the worker send traces to Tempo's OTLP/HTTP receiver", () => {
  const port = tempo.distributor.receivers.otlp.protocols.http.endpoint.split(":").pop();
  assert.ok(overlay.services.tempo.ports.includes(`${port}:${port}`));
  for (const s of ["frontend", "worker"]) {
    assert.equal(merged[s].environment.OTEL_EXPORTER_OTLP_ENDPOINT, `http://tempo:${port}`);
    assert.equal(merged[s].environment.TURBINE_LOG_LEVEL, base.services[s].environment.TURBINE_LOG_LEVEL);
  }
});

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function waitFor(fn, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    try { if (await fn()) return; } catch {}
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("turbine serves what Prometheus scrapes and posts OTLP traces where Tempo listens", async (t) => {
  if (!haveBin) return t.skip(`${turbineBin} is not built`);
  const model = path.join(shared, "models/stories260K/stories260K.gguf");
  if (!fs.existsSync(model)) return skipMissing(t, `${model} missing`);
  // A stand-in for Tempo's receiver: the path and content type the OTLP/HTTP protocol uses.
  const posts = [];
  const receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => { posts.push({ url: req.url, type: req.headers["content-type"], body }); res.end("{}"); });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  const port = await freePort();
  const env = { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.address().port}`, OTEL_SERVICE_NAME: "turbine-frontend" };
  const p = spawn(turbineBin, ["run", "--model", model, "--host", "127.0.0.1", "--port", String(port), "--threads", "1"], { env, stdio: "ignore" });
  try {
    const baseUrl = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${baseUrl}/health`)).ok, 30000, "turbine run");
    const r = await fetch(`${baseUrl}/v1/completions`, {
      method: "POST", headers: { "content-type": "application/json", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
      body: JSON.stringify({ model: "stories260K", prompt: "Once upon a time", max_tokens: 4 }),
    });
    assert.equal(r.status, 200);
    const job = prom.scrape_configs.find((j) => j.job_name === "turbine-frontend");
    const text = await (await fetch(`${baseUrl}${job.metrics_path}`)).text();
    const dashMetrics = new Set([...JSON.stringify(dashboard).matchAll(/turbine_frontend_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, "")));
    for (const n of ["turbine_frontend_requests_total", "turbine_frontend_time_to_first_token_seconds"]) {
      assert.ok(dashMetrics.has(n), `dashboard does not query ${n}`);
      assert.match(text, new RegExp(`^${n}(_bucket|_count)?\\{`, "m"), `${n} missing from ${job.metrics_path}`);
    }
    await waitFor(() => posts.length > 0, 10000, "an OTLP export");
    assert.equal(posts[0].url, "/v1/traces");
    assert.match(posts[0].type, /application\/json/);
    assert.match(posts[0].body, /turbine-frontend/);
  } finally {
    p.kill("SIGTERM");
    await new Promise((r) => p.once("exit", r));
    receiver.close();
  }
});

test("nats-server.conf: valid for nats-server, JetStream on, 8 MB payloads, monitoring on the compose port", async (t) => {
  const conf = fs.readFileSync(path.join(dockerDir, "nats-server.conf"), "utf8");
  assert.match(conf, /^max_payload: 8MB$/m);
  assert.match(conf, /^jetstream \{/m);
  const httpPort = conf.match(/^http_port: (\d+)$/m)[1];
  const clientPort = conf.match(/^port: (\d+)$/m)[1];
  assert.ok(base.services.nats.ports.includes(`${httpPort}:${httpPort}`), "monitoring port not published");
  assert.ok(base.services.nats.ports.includes(`${clientPort}:${clientPort}`));
  assert.ok(mountOf("nats", "/etc/nats/nats-server.conf"));
  const nats = spawnSync("sh", ["-c", "command -v nats-server"], { encoding: "utf8" }).stdout.trim();
  if (!nats) {
    if (process.env.CI === "true") assert.fail("nats-server is required in CI");
    return t.skip("nats-server not installed");
  }
  // The same file with loopback ports and a temporary store, run for real; then `turbine doctor`.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "turbine-nats-"));
  const [cp, hp] = [await freePort(), await freePort()];
  const local = conf.replace(/^port: \d+$/m, `port: ${cp}`).replace(/^http_port: \d+$/m, `http_port: ${hp}`)
    .replace(/store_dir: \S+/, `store_dir: ${dir}`) + "\nhost: 127.0.0.1\n";
  fs.writeFileSync(path.join(dir, "nats.conf"), local);
  assert.equal(spawnSync(nats, ["-c", path.join(dir, "nats.conf"), "-t"]).status, 0, "nats-server -t refuses the config");
  const p = spawn(nats, ["-c", path.join(dir, "nats.conf")], { stdio: "ignore" });
  try {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${hp}/healthz?js-enabled-only=true`)).ok, 10000, "nats");
    if (!haveBin) return t.skip(`${turbineBin} is not built`);
    const r = spawnSync(turbineBin, ["doctor", "--json", "--no-loopback", "--port", "0", "--kubectl", "/nonexistent",
      "--nats-url", `nats://127.0.0.1:${cp}`], { encoding: "utf8" });
    const report = JSON.parse(r.stdout);
    const byId = Object.fromEntries(report.checks.map((c) => [c.id, c]));
    assert.equal(byId["nats.pubsub"].status, "pass", byId["nats.pubsub"].summary);
    assert.equal(byId["nats.pubsub"].details.max_payload_bytes, 8 << 20);
    assert.equal(byId["nats.jetstream"].status, "pass", byId["nats.jetstream"].summary);
  } finally {
    p.kill("SIGTERM");
    await new Promise((r) => p.once("exit", r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
