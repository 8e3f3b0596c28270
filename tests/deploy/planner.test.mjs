// The planner in the chart (examples/planner.yaml) and the Kubernetes connector against a local
// HTTPS API server (issue 23): the Role grants exactly what `turbine planner --connector
// kubernetes` does (get and patch of the managed Deployments' scale), which the fake API server
// checks call by call: method, path, bearer token, content type and body.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { byKindName, chartDir, container, flags, helm, render, releaseNamespace, writeTemp } from "./lib.mjs";

const BIN = process.env.TURBINE_BIN;
const objs = () => render("planner");

function plannerConfig(m) {
  const cm = m.get("ConfigMap/turbine-planner");
  return { config: JSON.parse(cm.data["planner.json"]), profile: JSON.parse(cm.data["profile.json"]) };
}

test("planner example: ServiceAccount, Role, RoleBinding, ConfigMap, Deployment and Service", () => {
  const m = byKindName(objs());
  const sa = m.get("ServiceAccount/turbine-planner");
  assert.equal(sa.automountServiceAccountToken, true);
  const role = m.get("Role/turbine-planner");
  assert.deepEqual(role.rules, [{
    apiGroups: ["apps"], resources: ["deployments/scale"],
    resourceNames: ["turbine-decode", "turbine-prefill"], verbs: ["get", "patch"],
  }]);
  const rb = m.get("RoleBinding/turbine-planner");
  assert.deepEqual(rb.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "turbine-planner" });
  assert.deepEqual(rb.subjects, [{ kind: "ServiceAccount", name: "turbine-planner", namespace: releaseNamespace }]);

  const dep = m.get("Deployment/turbine-planner");
  assert.equal(dep.spec.replicas, 1);
  assert.equal(dep.spec.strategy.type, "Recreate");
  assert.equal(dep.spec.template.spec.serviceAccountName, "turbine-planner");
  assert.equal(dep.spec.template.spec.automountServiceAccountToken, true);
  const c = container(dep);
  assert.equal(c.args[0], "planner");
  const f = flags(c.args);
  assert.equal(f["--config"], "/etc/turbine-planner/planner.json");
  const fe = flags(container(m.get("Deployment/turbine-frontend")).args);
  assert.equal(f["--etcd-endpoints"], fe["--etcd-endpoints"]);
  assert.equal(f["--namespace"], fe["--namespace"]);
  assert.equal(c.volumeMounts.find((v) => v.name === "config").mountPath, "/etc/turbine-planner");
  assert.equal(dep.spec.template.spec.volumes.find((v) => v.name === "config").configMap.name, "turbine-planner");
  assert.equal(c.ports[0].containerPort, 8090);

  // Only the planner's pods get a token; the rest keep theirs unmounted.
  for (const d of objs().filter((o) => o.spec?.template && o.metadata.name !== "turbine-planner")) {
    assert.equal(d.spec.template.spec.automountServiceAccountToken, false, d.metadata.name);
  }
  // The managed groups leave their replica count to the planner.
  for (const name of ["turbine-decode", "turbine-prefill"]) {
    assert.equal(m.get(`Deployment/${name}`).spec.replicas, undefined, name);
  }
  const sm = objs().find((o) => o.kind === "ServiceMonitor");
  assert.ok(sm.spec.selector.matchExpressions[0].values.includes("planner"));
  assert.deepEqual(m.get("Service/turbine-planner").spec.ports, [{ name: "metrics", port: 8090, targetPort: "metrics", protocol: "TCP" }]);

  const { config } = plannerConfig(m);
  assert.equal(config.connector, "kubernetes");
  assert.equal(config.mode, "sla");
  assert.equal(config.kubernetes.namespace, releaseNamespace);
  assert.equal(config.frontend_metrics_url, "http://turbine-frontend:80/metrics");
  assert.deepEqual(config.models.map((x) => x.name), ["llama-3.1-8b"]);
  const pools = config.models[0].pools;
  assert.deepEqual(pools.decode, { deployment: "turbine-decode", gpus_per_worker: 1, initial: 2, max: 8, min: 1 });
  assert.equal(pools.prefill.deployment, "turbine-prefill");
  // Every Deployment the config names exists, with the worker type of its pool.
  for (const [pool, p] of Object.entries(pools)) {
    const d = m.get(`Deployment/${p.deployment}`);
    assert.equal(d.metadata.labels["turbine/worker-type"], pool);
  }
});

test("the rendered planner configuration passes turbine planner's own validation", () => {
  const { config, profile } = plannerConfig(byKindName(objs()));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "turbine-planner-"));
  fs.writeFileSync(path.join(dir, "profile.json"), JSON.stringify(profile));
  config.models[0].profile = path.join(dir, "profile.json");
  fs.writeFileSync(path.join(dir, "planner.json"), JSON.stringify(config));
  const r = spawnSync(BIN, ["planner", "--config", path.join(dir, "planner.json"), "--check-config"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /planner config ok: mode sla, connector kubernetes, 1 model/);
  // And the chart's command line through the binary's flag parser.
  const dep = byKindName(objs()).get("Deployment/turbine-planner");
  const p = spawnSync(BIN, container(dep).args, { encoding: "utf8", env: { ...process.env, TURBINE_CHECK_ARGS: "1" } });
  assert.equal(p.status, 0, p.stderr);
});

const refused = [
  ["sla mode without a profile", "planner:\n  enable: true\n  mode: sla\n", /planner.profile is required/],
  ["a group that does not exist", "planner:\n  enable: true\n  groups:\n    - name: nope\n", /"nope" is not a worker group/],
  ["two groups as one pool", "workerGroups:\n  - name: a\n  - name: b\nplanner:\n  enable: true\n",
    /both the decode pool of model/],
  ["min above max", "planner:\n  enable: true\n  groups:\n    - name: worker\n      min: 5\n      max: 2\n", /min \(5\) is above max \(2\)/],
];
for (const [what, yaml, pattern] of refused) {
  test(`the templates refuse a planner with ${what}`, () => {
    const r = helm(["template", "turbine", chartDir, "-f", writeTemp("bad.yaml", yaml)]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, pattern);
  });
}

test("the values schema rejects bad planner values", () => {
  for (const [yaml, pattern] of [
    ["planner:\n  mode: fastest\n", /mode/],
    ["planner:\n  intervalSeconds: 0\n", /intervalSeconds/],
    ["planner:\n  groups:\n    - name: worker\n      min: -1\n", /min/],
    ["planner:\n  scaleUp: true\n", /scaleUp/],
  ]) {
    const r = helm(["template", "turbine", chartDir, "-f", writeTemp("bad.yaml", yaml)]);
    assert.notEqual(r.code, 0, yaml);
    assert.match(r.stderr, /values don't meet the specifications of the schema/);
    assert.match(r.stderr, pattern);
  }
});

// A fake API server: the scale subresource of the Deployments the Role names, over TLS with a
// self-signed certificate; every call is checked and recorded.
async function fakeApiServer(dir, token, namespace, deployments) {
  const key = path.join(dir, "key.pem"), cert = path.join(dir, "cert.pem");
  const ssl = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { encoding: "utf8" });
  assert.equal(ssl.status, 0, ssl.stderr);
  const replicas = Object.fromEntries(deployments.map((d) => [d, 2]));
  const calls = [];
  const problems = [];
  const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
    let body = "";
    req.on("data", (d) => { body += d; });
    req.on("end", () => {
      calls.push({ method: req.method, url: req.url, headers: req.headers, body });
      const m = req.url.match(/^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments\/([^/]+)\/scale$/);
      const fail = (code, why) => {
        problems.push(`${req.method} ${req.url}: ${why}`);
        res.writeHead(code, { "content-type": "application/json" });
        res.end(JSON.stringify({ kind: "Status", status: "Failure", message: why, code }));
      };
      if (req.headers.authorization !== `Bearer ${token}`) return fail(401, "bad bearer token");
      if (!m || m[1] !== namespace || !(m[2] in replicas)) return fail(403, "not granted by the Role");
      if (req.headers.accept !== "application/json") return fail(406, `accept ${req.headers.accept}`);
      if (req.method === "PATCH") {
        if (req.headers["content-type"] !== "application/merge-patch+json") return fail(415, `content-type ${req.headers["content-type"]}`);
        let patch;
        try { patch = JSON.parse(body); } catch { return fail(400, "body is not JSON"); }
        const keys = JSON.stringify(Object.keys(patch)) + JSON.stringify(Object.keys(patch.spec ?? {}));
        if (keys !== '["spec"]["replicas"]' || !Number.isInteger(patch.spec.replicas) || patch.spec.replicas < 0) {
          return fail(422, `unexpected patch ${body}`);
        }
        replicas[m[2]] = patch.spec.replicas;
      } else if (req.method !== "GET") {
        return fail(405, "verb not granted");
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ kind: "Scale", apiVersion: "autoscaling/v1",
        metadata: { name: m[2], namespace }, spec: { replicas: replicas[m[2]] }, status: { replicas: replicas[m[2]] } }));
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { server, cert, calls, problems, replicas, url: `https://127.0.0.1:${server.address().port}` };
}

test("kubernetes connector: GET and PATCH of deployments/scale, exactly what the Role grants", async (t) => {
  if (!BIN) return t.skip("TURBINE_BIN is not set");
  const m = byKindName(objs());
  const role = m.get("Role/turbine-planner");
  const { config, profile } = plannerConfig(m);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "turbine-k8s-"));
  const token = "planner-token-" + process.pid;
  fs.writeFileSync(path.join(dir, "token"), token + "\n");
  const api = await fakeApiServer(dir, token, config.kubernetes.namespace, role.rules[0].resourceNames);
  // The frontend's /metrics: the decode workers' KV cache is 95% full, nothing is queued.
  const model = config.models[0].name;
  const metrics = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end([
      "# TYPE turbine_frontend_requests_total counter",
      `turbine_frontend_requests_total{model="${model}",endpoint="completions",request_type="stream",status="success"} 10`,
      "# TYPE turbine_engine_kv_used_blocks gauge",
      `turbine_engine_kv_used_blocks{model="${model}"} 950`,
      "# TYPE turbine_engine_kv_total_blocks gauge",
      `turbine_engine_kv_total_blocks{model="${model}"} 1000`,
      "",
    ].join("\n"));
  });
  await new Promise((r) => metrics.listen(0, "127.0.0.1", r));
  fs.writeFileSync(path.join(dir, "profile.json"), JSON.stringify(profile));
  config.models[0].profile = path.join(dir, "profile.json");
  config.frontend_metrics_url = `http://127.0.0.1:${metrics.address().port}/metrics`;
  config.status_port = -1;
  fs.writeFileSync(path.join(dir, "planner.json"), JSON.stringify(config));

  const proc = spawn(BIN, ["planner", "--config", path.join(dir, "planner.json"), "--mode", "load",
    "--interval", "0.5", "--k8s-api-server", api.url, "--k8s-token-file", path.join(dir, "token"),
    "--k8s-ca-file", api.cert], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  proc.stdout.on("data", (d) => { log += d; });
  proc.stderr.on("data", (d) => { log += d; });
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline && !(api.calls.some((c) => c.method === "PATCH") && api.calls.length >= 6)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill("SIGTERM");
  await new Promise((r) => proc.once("exit", r));
  api.server.close();
  metrics.close();

  assert.deepEqual(api.problems, [], log);
  const patches = api.calls.filter((c) => c.method === "PATCH");
  assert.ok(patches.length >= 1, log);
  // The decode pool grew by one (KV 95% > 90%), as a merge patch of spec.replicas alone.
  const decodePath = `/apis/apps/v1/namespaces/${releaseNamespace}/deployments/turbine-decode/scale`;
  const grow = patches.find((c) => c.url === decodePath);
  assert.deepEqual(JSON.parse(grow.body), { spec: { replicas: 3 } });
  assert.ok(api.replicas["turbine-decode"] >= 3);
  // What the connector did is exactly what the Role grants: verbs, resource, names.
  const verbs = [...new Set(api.calls.map((c) => c.method.toLowerCase()))].sort();
  assert.deepEqual(verbs, [...role.rules[0].verbs].sort());
  for (const c of api.calls) {
    const name = c.url.match(/deployments\/([^/]+)\/scale$/)[1];
    assert.ok(role.rules[0].resourceNames.includes(name), c.url);
    assert.equal(c.headers.authorization, `Bearer ${token}`);
  }
  assert.match(log, /deployment turbine-decode scaled to 3/);
});
