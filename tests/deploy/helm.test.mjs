// helm lint + helm template of deploy/helm/turbine for the default values and both examples;
// every rendered object validated offline; what each layout must contain; values the schema rejects.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import {
  byKindName, chartDir, container, examples, flags, helm, releaseNamespace, render, run, template, tools,
  validateObject, valuesArgs, writeTemp,
} from "./lib.mjs";

const layouts = [undefined, ...examples];
const label = (ex) => ex ?? "default";
const deployments = (objs) => objs.filter((o) => o.kind === "Deployment");
const workers = (objs) =>
  deployments(objs).filter((d) => d.metadata.labels["app.kubernetes.io/component"] === "worker");
const gpuLimit = (d) => Number(container(d).resources?.limits?.["nvidia.com/gpu"] ?? 0);

for (const ex of layouts) {
  test(`helm lint --strict passes (${label(ex)})`, () => {
    const r = helm(["lint", "--strict", chartDir, ...valuesArgs(ex)]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  test(`every rendered object validates against the Kubernetes schemas (${label(ex)})`, async () => {
    const objs = render(ex);
    assert.ok(objs.length >= 7, `only ${objs.length} objects`);
    const failures = [];
    for (const o of objs) {
      const errs = await validateObject(o);
      if (errs.length) failures.push(`${o.kind}/${o.metadata?.name}: ${errs.join("; ")}`);
    }
    assert.deepEqual(failures, []);
    const ids = objs.map((o) => `${o.kind}/${o.metadata.name}`);
    assert.equal(new Set(ids).size, ids.length, `duplicate objects: ${ids}`);
  });

  test(`kubectl's own decoder reads the rendered manifests (${label(ex)})`, () => {
    // kubectl kustomize parses each document with the Kubernetes YAML decoder and refuses two
    // objects with the same kind/namespace/name.
    const file = writeTemp("all.yaml", template(ex));
    fs.writeFileSync(path.join(path.dirname(file), "kustomization.yaml"), "resources: [all.yaml]\n");
    const r = run(tools().kubectl, ["kustomize", path.dirname(file)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.match(/^kind: /gm).length, render(ex).length);
  });

  test(`selectors, ports and probes fit together (${label(ex)})`, () => {
    const objs = render(ex);
    const pods = objs.filter((o) => o.spec?.template).map((o) => o.spec.template);
    for (const w of objs.filter((o) => o.spec?.template)) {
      const sel = w.spec.selector.matchLabels;
      for (const [k, v] of Object.entries(sel)) {
        assert.equal(w.spec.template.metadata.labels[k], v, `${w.metadata.name}: selector ${k} not on its pods`);
      }
      const podSpec = w.spec.template.spec;
      assert.equal(podSpec.securityContext.runAsNonRoot, true, `${w.metadata.name} may run as root`);
      for (const c of podSpec.containers) {
        assert.equal(c.securityContext.allowPrivilegeEscalation, false);
        assert.equal(c.securityContext.readOnlyRootFilesystem, true);
        const portNames = new Set((c.ports ?? []).map((p) => p.name));
        for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
          const p = c[probe]?.httpGet?.port;
          if (p !== undefined) assert.ok(portNames.has(p), `${w.metadata.name} ${probe} on unknown port ${p}`);
        }
        const mounts = new Set((c.volumeMounts ?? []).map((m) => m.name));
        const vols = new Set([
          ...(podSpec.volumes ?? []).map((v) => v.name),
          ...(w.spec.volumeClaimTemplates ?? []).map((v) => v.metadata.name),
        ]);
        for (const m of mounts) assert.ok(vols.has(m), `${w.metadata.name}: mount ${m} has no volume`);
      }
    }
    // Every Service selects at least one pod template and targets a port those pods name.
    for (const svc of objs.filter((o) => o.kind === "Service")) {
      const matching = pods.filter((t) =>
        Object.entries(svc.spec.selector).every(([k, v]) => t.metadata.labels[k] === v));
      assert.ok(matching.length > 0, `Service ${svc.metadata.name} selects no pods`);
      for (const p of svc.spec.ports) {
        const named = matching.some((t) => t.spec.containers.some((c) => (c.ports ?? []).some((cp) => cp.name === p.targetPort)));
        assert.ok(named, `Service ${svc.metadata.name} port ${p.name} targets unknown ${p.targetPort}`);
      }
    }
  });

  test(`frontend and workers find the same etcd and NATS (${label(ex)})`, () => {
    const objs = render(ex);
    const m = byKindName(objs);
    const fe = container(m.get("Deployment/turbine-frontend"));
    assert.deepEqual(fe.command, ["turbine"]);
    assert.equal(fe.args[0], "frontend");
    const f = flags(fe.args);
    assert.equal(f["--host"], "0.0.0.0");
    assert.equal(f["--port"], "8000");
    assert.equal(f["--discovery"], "etcd");
    assert.ok(["kv", "round-robin", "random", "least-loaded"].includes(f["--router-mode"]));
    assert.deepEqual(fe.ports, [{ name: "http", containerPort: 8000, protocol: "TCP" }]);
    assert.equal(fe.livenessProbe.httpGet.path, "/live");
    assert.equal(fe.readinessProbe.httpGet.path, "/health");
    for (const u of f["--etcd-endpoints"].split(",")) assert.match(u, /^https?:\/\/[^/]+:\d+$/);
    if (m.has("StatefulSet/turbine-etcd")) {
      assert.equal(f["--etcd-endpoints"], "http://turbine-etcd:2379");
      assert.ok(m.has("Service/turbine-etcd"));
    }
    if (m.has("Deployment/turbine-nats")) {
      assert.equal(f["--nats-url"], "nats://turbine-nats:4222");
      assert.ok(container(m.get("Deployment/turbine-nats")).args.includes("--jetstream"));
    }
    assert.ok(workers(objs).length >= 1);
    for (const w of workers(objs)) {
      const c = container(w);
      assert.equal(c.args[0], "worker");
      const wf = flags(c.args);
      for (const k of ["--etcd-endpoints", "--nats-url", "--namespace", "--discovery"]) {
        assert.equal(wf[k], f[k], `${w.metadata.name} ${k}`);
      }
      assert.equal(wf["--worker-type"], w.metadata.labels["turbine/worker-type"]);
      assert.equal(c.ports[0].containerPort, Number(wf["--status-port"]));
      assert.equal(c.readinessProbe.httpGet.path, "/health");
      assert.equal(c.livenessProbe.httpGet.path, "/live");
      const gpus = gpuLimit(w);
      assert.equal(wf["--device"], gpus > 0 ? "cuda" : "cpu");
      assert.ok(gpus === 0 || gpus >= Number(wf["--tensor-parallel-size"]));
    }
  });
}

test("default values: ClusterIP :80 -> 8000, chart-internal etcd + NATS, no ServiceMonitor, no RDMA", () => {
  const objs = render();
  const m = byKindName(objs);
  const svc = m.get("Service/turbine-frontend");
  assert.equal(svc.spec.type, "ClusterIP");
  assert.deepEqual(svc.spec.ports, [{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }]);
  assert.ok(m.has("StatefulSet/turbine-etcd"));
  assert.ok(m.has("Deployment/turbine-nats"));
  assert.equal(objs.filter((o) => o.kind === "ServiceMonitor").length, 0);
  const [w] = workers(objs);
  assert.equal(w.spec.template.spec.hostNetwork, undefined);
  assert.ok(!container(w).args.includes("--kv-transfer"));
  assert.equal(m.get("Deployment/turbine-frontend").metadata.namespace, undefined);
  for (const o of objs) assert.equal(o.metadata.labels["app.kubernetes.io/instance"], "turbine");
});

test("single node: 1 decode worker with 4 GPUs (TP 4) + 4 prefill workers with 1 GPU, model from the PVC", () => {
  const objs = render("single-node");
  const ws = workers(objs);
  const decode = ws.filter((w) => w.metadata.labels["turbine/worker-type"] === "decode");
  const prefill = ws.filter((w) => w.metadata.labels["turbine/worker-type"] === "prefill");
  assert.equal(decode.reduce((n, d) => n + d.spec.replicas, 0), 1);
  assert.equal(gpuLimit(decode[0]), 4);
  assert.equal(flags(container(decode[0]).args)["--tensor-parallel-size"], "4");
  assert.equal(prefill.reduce((n, d) => n + d.spec.replicas, 0), 4);
  for (const p of prefill) assert.equal(gpuLimit(p), 1);
  const nodes = new Set(ws.map((w) => w.spec.template.spec.nodeSelector["kubernetes.io/hostname"]));
  assert.equal(nodes.size, 1);
  for (const d of deployments(objs).filter((d) => ["frontend", "worker"].includes(d.metadata.labels["app.kubernetes.io/component"]))) {
    const spec = d.spec.template.spec;
    const vol = spec.volumes.find((v) => v.name === "model");
    assert.equal(vol.persistentVolumeClaim.claimName, "models");
    assert.equal(vol.persistentVolumeClaim.readOnly, true);
    assert.equal(container(d).volumeMounts.find((v) => v.name === "model").mountPath, "/data");
    const hf = container(d).env.find((e) => e.name === "HF_TOKEN");
    assert.deepEqual(hf.valueFrom.secretKeyRef, { name: "hf-token", key: "HF_TOKEN" });
  }
  for (const w of ws) assert.match(flags(container(w).args)["--model"], /^\/data\//);
  // TP > 1 needs shared memory for NCCL.
  assert.equal(decode[0].spec.template.spec.volumes.find((v) => v.name === "shm").emptyDir.medium, "Memory");
});

test("three nodes: 20 prefill GPUs + 4 decode GPUs on 3 nodes, RDMA on, external etcd", () => {
  const objs = render("three-nodes");
  const m = byKindName(objs);
  const ws = workers(objs);
  const gpus = (type) => ws.filter((w) => w.metadata.labels["turbine/worker-type"] === type)
    .reduce((n, w) => n + w.spec.replicas * gpuLimit(w), 0);
  assert.equal(gpus("prefill"), 20);
  assert.equal(gpus("decode"), 4);
  const perNode = {};
  for (const w of ws) {
    const node = w.spec.template.spec.nodeSelector["kubernetes.io/hostname"];
    perNode[node] = (perNode[node] ?? 0) + w.spec.replicas * gpuLimit(w);
  }
  assert.deepEqual(Object.keys(perNode).sort(), ["gpu-node-0", "gpu-node-1", "gpu-node-2"]);
  for (const [node, n] of Object.entries(perNode)) assert.ok(n <= 8, `${node} needs ${n} GPUs`);
  for (const w of ws) {
    const c = container(w);
    // No --kv-transfer yet: the worker's KV transfer backends (UCX/RDMA) come with issue 8.
    assert.equal(flags(c.args)["--kv-transfer"], undefined);
    assert.equal(c.resources.limits["rdma/rdma_shared_device_a"], 1);
    assert.ok(c.securityContext.capabilities.add.includes("IPC_LOCK"));
    assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
    const ann = w.spec.template.metadata.annotations;
    assert.equal(ann["k8s.v1.cni.cncf.io/networks"], "rdma-net");
    assert.equal(ann["turbine/network-mode"], "multus");
    assert.equal(w.spec.template.spec.hostNetwork, undefined);
  }
  assert.ok(!m.has("StatefulSet/turbine-etcd"), "external etcd: the chart must not render its own");
  assert.equal(flags(container(m.get("Deployment/turbine-frontend")).args)["--etcd-endpoints"],
    "http://etcd-0.etcd.infra.svc:2379,http://etcd-1.etcd.infra.svc:2379,http://etcd-2.etcd.infra.svc:2379");
  assert.equal(m.get("Service/turbine-frontend").spec.type, "LoadBalancer");
  // The frontend does not move KV blocks: no RDMA there.
  assert.equal(container(m.get("Deployment/turbine-frontend")).resources.limits["rdma/rdma_shared_device_a"], undefined);
});

test("rdma.enable with hostNetwork: host network, ClusterFirstWithHostNet, network-mode annotation, RDMA resource", () => {
  const objs = render(undefined, ["--set", "rdma.enable=true", "--set", "rdma.networks=ib-net"]);
  for (const w of workers(objs)) {
    const spec = w.spec.template.spec;
    assert.equal(spec.hostNetwork, true);
    assert.equal(spec.dnsPolicy, "ClusterFirstWithHostNet");
    assert.equal(w.spec.template.metadata.annotations["turbine/network-mode"], "host");
    assert.equal(container(w).resources.limits["rdma/hca"], 1);
    assert.equal(flags(container(w).args)["--kv-transfer"], undefined);  // issue 8
  }
  const fe = byKindName(objs).get("Deployment/turbine-frontend");
  assert.equal(fe.spec.template.spec.hostNetwork, undefined);
});

test("ServiceMonitor scrapes the frontend's http port and every worker's status port", () => {
  const objs = render("single-node");
  const [sm] = objs.filter((o) => o.kind === "ServiceMonitor");
  assert.ok(sm);
  assert.equal(sm.apiVersion, "monitoring.coreos.com/v1");
  assert.equal(sm.metadata.labels.release, "prometheus");
  assert.deepEqual(sm.spec.namespaceSelector.matchNames, [releaseNamespace]);
  const services = objs.filter((o) => o.kind === "Service").filter((s) =>
    Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => s.metadata.labels[k] === v) &&
    sm.spec.selector.matchExpressions.every((e) => e.values.includes(s.metadata.labels[e.key])));
  const scraped = new Set();
  for (const ep of sm.spec.endpoints) {
    assert.equal(ep.path, "/metrics");
    for (const s of services) if (s.spec.ports.some((p) => p.name === ep.port)) scraped.add(s.metadata.name);
  }
  assert.deepEqual([...scraped].sort(), ["turbine-frontend", "turbine-workers"]);
  const workersSvc = services.find((s) => s.metadata.name === "turbine-workers");
  assert.equal(workersSvc.spec.clusterIP, "None");
});

test("a worker group overrides workerDefaults key by key (gpus: 0 makes a CPU worker)", () => {
  const values = writeTemp("cpu.yaml", [
    "workerGroups:",
    "  - name: cpu",
    "    gpus: 0",
    "    tolerations: []",
    "    extraArgs: ['--max-num-seqs', '4']",
  ].join("\n"));
  const [w] = workers(render(undefined, ["-f", values]));
  const c = container(w);
  const f = flags(c.args);
  assert.equal(f["--device"], "cpu");
  assert.equal(f["--gpu-memory-utilization"], undefined);
  assert.equal(f["--max-num-seqs"], "4");
  assert.equal(f["--worker-type"], "both");
  assert.equal(c.resources.limits, undefined);
  assert.equal(w.spec.template.spec.tolerations, undefined);
  assert.ok(!w.spec.template.spec.volumes.some((v) => v.name === "shm"));
});

// Values the chart must refuse, and the words the refusal must contain.
const rejected = [
  ["workerType: foo, gpus: -1", "workerGroups:\n  - name: bad\n    workerType: foo\n    gpus: -1\n",
    [/workerType/, /gpus/]],
  ["unknown router mode", "frontend:\n  routerMode: fastest\n", [/routerMode/]],
  ["typo in a worker group key", "workerGroups:\n  - name: w\n    gpu: 4\n", [/gpu/]],
  ["gpuMemoryUtilization above 1", "workerGroups:\n  - name: w\n    gpuMemoryUtilization: 1.5\n", [/gpuMemoryUtilization/]],
  ["modelPVC on without a claim name", "modelPVC:\n  enable: true\n", [/name/]],
  ["a worker group name that is not a DNS label", "workerGroups:\n  - name: Prefill_A\n", [/name/]],
  ["external etcd endpoint without a scheme", "etcd:\n  external:\n    endpoints: [etcd:2379]\n", [/endpoints/]],
  ["no worker groups", "workerGroups: []\n", [/workerGroups/]],
];
for (const [what, yaml, patterns] of rejected) {
  test(`the values schema rejects ${what} (lint and template)`, () => {
    const file = writeTemp("bad.yaml", yaml);
    const lint = helm(["lint", chartDir, "-f", file]);
    assert.notEqual(lint.code, 0, `helm lint accepted:\n${yaml}`);
    const tpl = helm(["template", "turbine", chartDir, "-f", file]);
    assert.notEqual(tpl.code, 0, `helm template accepted:\n${yaml}`);
    assert.match(tpl.stderr, /values don't meet the specifications of the schema/);
    for (const p of patterns) assert.match(tpl.stderr, p);
  });
}

const refusedByTemplates = [
  ["tensorParallelSize above gpus", "workerGroups:\n  - name: w\n    gpus: 2\n    tensorParallelSize: 4\n",
    /gpus \(2\) must be at least tensorParallelSize \(4\)/],
  ["two worker groups with one name", "workerGroups:\n  - name: w\n  - name: w\n", /"w" is used twice/],
];
for (const [what, yaml, pattern] of refusedByTemplates) {
  test(`the templates refuse ${what}`, () => {
    const tpl = helm(["template", "turbine", chartDir, "-f", writeTemp("bad.yaml", yaml)]);
    assert.notEqual(tpl.code, 0);
    assert.match(tpl.stderr, pattern);
  });
}

test("frontend.service NodePort with a fixed nodePort renders and validates", async () => {
  const objs = render(undefined, ["--set", "frontend.service.type=NodePort", "--set", "frontend.service.nodePort=30080"]);
  const svc = byKindName(objs).get("Service/turbine-frontend");
  assert.equal(svc.spec.type, "NodePort");
  assert.equal(svc.spec.ports[0].nodePort, 30080);
  assert.deepEqual(await validateObject(svc), []);
});

test("every values.yaml key is documented in docs/DEPLOY.md's values table", () => {
  const values = YAML.parse(fs.readFileSync(path.join(chartDir, "values.yaml"), "utf8"));
  const doc = fs.readFileSync(path.join(chartDir, "../../../docs/DEPLOY.md"), "utf8");
  const section = doc.slice(doc.indexOf("### Values"), doc.indexOf("### Example layouts"));
  const keys = [];
  for (const [k, v] of Object.entries(values)) {
    keys.push(k);
    if (["frontend", "workerDefaults", "rdma", "modelPVC", "hfTokenSecret", "serviceMonitor", "probes"].includes(k)) {
      for (const sub of Object.keys(v)) keys.push(sub);
    }
  }
  const missing = keys.filter((k) => !new RegExp(`\`[^\`|]*\\b${k}\\b[^\`|]*\``).test(section));
  assert.deepEqual(missing, []);
});
