// Tensor parallelism in the chart (issue 22): tensorParallelSize drives --tensor-parallel-size, the
// GPU request and the /dev/shm tmpfs; and every turbine command the chart renders (default values,
// both examples, tensor-parallel groups on GPU and CPU) passes the binary's own flag parser
// (TURBINE_CHECK_ARGS=1: parse with the real flags, exit 0 or with the parser's error), so a
// chart/binary mismatch cannot ship again.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { container, examples, flags, render, repo, writeTemp } from "./lib.mjs";

const turbineBin = path.resolve(repo, process.env.TURBINE_BIN ?? "build/turbine");
const haveBin = fs.existsSync(turbineBin);
const workers = (objs) => objs.filter((o) => o.kind === "Deployment" &&
  o.metadata.labels["app.kubernetes.io/component"] === "worker");
const gpuLimit = (d) => Number(container(d).resources?.limits?.["nvidia.com/gpu"] ?? 0);

const tpValues = writeTemp("tp.yaml", [
  "workerGroups:",
  "  - name: gpu-tp",           // gpus not set: one GPU per rank
  "    tensorParallelSize: 2",
  "  - name: cpu-tp",           // a CPU worker whose ranks are thread groups
  "    gpus: 0",
  "    tensorParallelSize: 2",
  "    tolerations: []",
  "    extraArgs: ['--threads', '4']",
].join("\n"));

test("tensorParallelSize drives --tensor-parallel-size, the GPU request and /dev/shm", () => {
  const ws = workers(render(undefined, ["-f", tpValues]));
  const byName = Object.fromEntries(ws.map((w) => [w.metadata.labels["turbine/worker-group"], w]));
  const gpu = byName["gpu-tp"];
  assert.equal(flags(container(gpu).args)["--tensor-parallel-size"], "2");
  assert.equal(flags(container(gpu).args)["--device"], "cuda");
  assert.equal(gpuLimit(gpu), 2);
  const shm = gpu.spec.template.spec.volumes.find((v) => v.name === "shm");
  assert.equal(shm.emptyDir.medium, "Memory");
  assert.ok(container(gpu).volumeMounts.some((m) => m.name === "shm" && m.mountPath === "/dev/shm"));
  const cpu = byName["cpu-tp"];
  assert.equal(flags(container(cpu).args)["--tensor-parallel-size"], "2");
  assert.equal(flags(container(cpu).args)["--device"], "cpu");
  assert.equal(gpuLimit(cpu), 0);
  // The single-node example's decode worker: 4 GPUs for TP 4.
  const decode = workers(render("single-node")).find((w) => w.metadata.labels["turbine/worker-type"] === "decode");
  assert.equal(gpuLimit(decode), Number(flags(container(decode).args)["--tensor-parallel-size"]));
});

// Every turbine container of the rendered objects: [where, argv without "turbine"].
function turbineCommands(objs) {
  const out = [];
  for (const o of objs) {
    const spec = o.spec?.template?.spec;
    for (const c of [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])]) {
      if (c.command?.[0] !== "turbine") continue;
      out.push([`${o.kind}/${o.metadata.name}/${c.name}`, [...c.command.slice(1), ...(c.args ?? [])]]);
    }
  }
  return out;
}

function checkArgs(argv) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TURBINE_")));
  const r = spawnSync(turbineBin, argv, { env: { ...env, TURBINE_CHECK_ARGS: "1" }, encoding: "utf8" });
  return { code: r.status, out: (r.stdout ?? "") + (r.stderr ?? "") };
}

for (const [name, extra] of [["default", []], ...examples.map((e) => [e, []]), ["tensor-parallel groups", ["-f", tpValues]]]) {
  test(`every flag the chart passes is accepted by the binary's parser (${name})`, (t) => {
    if (!haveBin) {
      if (process.env.CI === "true") assert.fail(`${turbineBin} is not built`);
      return t.skip(`${turbineBin} is not built`);
    }
    const ex = examples.includes(name) ? name : undefined;
    const cmds = turbineCommands(render(ex, extra));
    const subs = new Set(cmds.map(([, a]) => a[0]));
    assert.ok(subs.has("worker") && subs.has("frontend"), [...subs].join(","));
    const rejected = [];
    for (const [where, argv] of cmds) {
      const res = checkArgs(argv);
      if (res.code !== 0) rejected.push(`${where}: ${res.out.split("\n")[0]}`);
    }
    assert.deepEqual(rejected, []);
  });
}

test("the parser check can fail: a flag the binary does not know is refused", (t) => {
  if (!haveBin) {
    if (process.env.CI === "true") assert.fail(`${turbineBin} is not built`);
    return t.skip(`${turbineBin} is not built`);
  }
  const bad = checkArgs(["worker", "--tensor-parallel-size", "0"]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.out, /--tensor-parallel-size/);
  assert.notEqual(checkArgs(["worker", "--tensor-paralel-size", "2"]).code, 0);
});
