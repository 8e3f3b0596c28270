// deploy/recipes/<model>/<layout>/: each values file lints and renders with the chart and passes the
// same offline schema validation as the chart's examples; the download and benchmark Jobs (and the
// model-cache PVC) validate too and agree with the render (PVC, model folder, frontend Service,
// served name); every Turbine command (rendered frontend/workers and both Jobs) goes through the
// binary's own flag parser (TURBINE_CHECK_ARGS=1), less exactly the flags of features not landed
// yet, listed below; the README table matches each recipe's GPUs and what it needs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { byKindName, chartDir, container, flags, helm, parseDocs, releaseNamespace, repo, run, tools, validateObject, writeTemp } from "./lib.mjs";

const recipesDir = path.join(repo, "deploy/recipes");
const turbineBin = path.resolve(repo, process.env.TURBINE_BIN ?? "build/turbine");
const haveBin = fs.existsSync(turbineBin);
const readme = fs.readFileSync(path.join(recipesDir, "README.md"), "utf8");

// Flags of features that have not landed, skipped (with their value) by the flag check. Each must
// be used by some recipe and named in the README; the README marks the recipes that use them.
const pendingFlags = {};

const recipes = fs.readdirSync(recipesDir, { withFileTypes: true }).filter((d) => d.isDirectory())
  .flatMap((m) => fs.readdirSync(path.join(recipesDir, m.name), { withFileTypes: true })
    .filter((l) => l.isDirectory()).map((l) => `${m.name}/${l.name}`))
  .sort();

const load = (file) => parseDocs(fs.readFileSync(file, "utf8"));
const valuesFile = (r) => path.join(recipesDir, r, "values.yaml");
function renderRecipe(r) {
  const res = helm(["template", "turbine", chartDir, "--namespace", releaseNamespace, "-f", valuesFile(r)]);
  if (res.code !== 0) throw new Error(`helm template ${r} failed:\n${res.stderr}`);
  return { text: res.stdout, objs: parseDocs(res.stdout) };
}
const workers = (objs) => objs.filter((o) => o.kind === "Deployment" && o.metadata.labels["app.kubernetes.io/component"] === "worker");
const gpus = (d) => Number(container(d).resources?.limits?.["nvidia.com/gpu"] ?? 0);
// The README row of a recipe: | `model/layout` | layout | workers | GPUs | GPU needed | needs |
function readmeRow(r) {
  const line = readme.split("\n").find((l) => l.startsWith(`| \`${r}\``));
  assert.ok(line, `README has no row for ${r}`);
  return line.split("|").slice(1, -1).map((c) => c.trim());
}

function withoutPending(argv) {
  const out = [];
  for (let i = 0; i < argv.length; i++) {
    const [name] = argv[i].split("=");
    if (pendingFlags[name]) {
      if (!argv[i].includes("=") && argv[i + 1] !== undefined && !argv[i + 1].startsWith("--")) i++;
      continue;
    }
    out.push(argv[i]);
  }
  return out;
}

function checkArgs(argv) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TURBINE_")));
  const r = spawnSync(turbineBin, argv, { env: { ...env, TURBINE_CHECK_ARGS: "1" }, encoding: "utf8" });
  return { code: r.status, out: (r.stdout ?? "") + (r.stderr ?? "") };
}

// Every Turbine container of a set of objects: [where, argv without "turbine"].
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

test("there are the recipes issue 26 asks for", () => {
  for (const r of ["llama-3.1-8b/agg", "llama-3.1-8b/disagg", "qwen3-32b/disagg-kv-router",
    "deepseek-r1-distill-llama-70b-fp8/single-node", "deepseek-r1-distill-llama-70b-fp8/three-nodes"]) {
    assert.ok(recipes.includes(r), `missing ${r}`);
  }
  for (const r of recipes) {
    for (const f of ["values.yaml", "download.yaml", "bench.yaml"]) {
      assert.ok(fs.existsSync(path.join(recipesDir, r, f)), `${r}/${f} missing`);
    }
  }
});

test("the model-cache PVC validates", async () => {
  const [pvc] = load(path.join(recipesDir, "model-cache.yaml"));
  assert.equal(pvc.kind, "PersistentVolumeClaim");
  assert.deepEqual(await validateObject(pvc), []);
  assert.deepEqual(pvc.spec.accessModes, ["ReadWriteMany"]);
});

for (const r of recipes) {
  test(`${r}: helm lint --strict and every rendered object validates`, async () => {
    const lint = helm(["lint", "--strict", chartDir, "-f", valuesFile(r)]);
    assert.equal(lint.code, 0, lint.stdout + lint.stderr);
    const { text, objs } = renderRecipe(r);
    const failures = [];
    for (const o of objs) {
      const errs = await validateObject(o);
      if (errs.length) failures.push(`${o.kind}/${o.metadata?.name}: ${errs.join("; ")}`);
    }
    assert.deepEqual(failures, []);
    const file = writeTemp("all.yaml", text);
    fs.writeFileSync(path.join(path.dirname(file), "kustomization.yaml"), "resources: [all.yaml]\n");
    const k = run(tools().kubectl, ["kustomize", path.dirname(file)]);
    assert.equal(k.code, 0, k.stderr);
  });

  test(`${r}: the download and benchmark Jobs validate and match the deployment`, async () => {
    const { objs } = renderRecipe(r);
    const m = byKindName(objs);
    const values = YAML.parse(fs.readFileSync(valuesFile(r), "utf8"));
    const [dl] = load(path.join(recipesDir, r, "download.yaml"));
    const [bench] = load(path.join(recipesDir, r, "bench.yaml"));
    for (const job of [dl, bench]) {
      assert.equal(job.kind, "Job");
      assert.deepEqual(await validateObject(job), [], job.metadata.name);
      const spec = job.spec.template.spec;
      assert.equal(spec.securityContext.runAsNonRoot, true);
      const vol = spec.volumes.find((v) => v.persistentVolumeClaim);
      assert.equal(vol.persistentVolumeClaim.claimName, values.modelPVC.name, `${job.metadata.name}: not the recipe's PVC`);
      for (const c of spec.containers) {
        assert.equal(c.securityContext.readOnlyRootFilesystem, true);
        assert.ok(c.volumeMounts.some((v) => v.name === vol.name && v.mountPath === values.modelPVC.mountPath));
      }
    }
    // The download lands where the workers load the model from.
    const dc = container(dl);
    assert.equal(dc.args[0], "download");
    const target = flags(dc.args)["--local-dir"];
    const ws = workers(objs);
    assert.ok(ws.length > 0);
    for (const w of ws) assert.equal(flags(container(w).args)["--model"], target, w.metadata.name);
    assert.match(dc.args[1], /^[\w.-]+\/[\w.-]+$/, "a Hub repo id");
    assert.equal(dc.env.find((e) => e.name === "HF_TOKEN").valueFrom.secretKeyRef.name, values.hfTokenSecret.name);
    // The benchmark targets the frontend Service and the served model name.
    const bc = container(bench);
    const bf = flags(bc.args);
    assert.equal(bc.args[0], "bench");
    const svc = m.get("Service/turbine-frontend");
    assert.equal(bf["--url"], `http://${svc.metadata.name}:${svc.spec.ports[0].port}`);
    for (const w of ws) assert.equal(flags(container(w).args)["--served-model-name"], bf["--model"]);
    assert.match(bf["--output-json"], new RegExp(`^${values.modelPVC.mountPath}/bench/`));
  });

  test(`${r}: every turbine command passes the binary's flag parser (less the pending flags)`, (t) => {
    if (!haveBin) return t.skip(`${turbineBin} is not built`);
    const { objs } = renderRecipe(r);
    const jobs = [...load(path.join(recipesDir, r, "download.yaml")), ...load(path.join(recipesDir, r, "bench.yaml"))];
    const cmds = turbineCommands([...objs, ...jobs]);
    assert.ok(cmds.length >= 4, `only ${cmds.length} turbine commands`);
    const subs = new Set(cmds.map(([, a]) => a[0]));
    for (const s of ["frontend", "worker", "download", "bench"]) assert.ok(subs.has(s), `no ${s} command`);
    const rejected = [];
    for (const [where, argv] of cmds) {
      const res = checkArgs(withoutPending(argv));
      if (res.code !== 0) rejected.push(`${where}: ${res.out.split("\n")[0]}`);
    }
    assert.deepEqual(rejected, []);
  });

  test(`${r}: the README states its GPUs and the features it needs`, () => {
    const { objs } = renderRecipe(r);
    const row = readmeRow(r);
    const total = workers(objs).reduce((n, w) => n + w.spec.replicas * gpus(w), 0);
    assert.equal(Number(row[3].match(/^\d+/)[0]), total, `${r}: README says ${row[3]} GPUs`);
    const args = workers(objs).flatMap((w) => container(w).args);
    const tp = Math.max(...workers(objs).map((w) => Number(flags(container(w).args)["--tensor-parallel-size"] ?? 1)));
    const usesPending = Object.keys(pendingFlags).filter((f) => args.includes(f));
    if (tp > 1) assert.match(row[5], /tensor parallelism \(issue 22\)/, `${r} uses TP ${tp}`);
    for (const f of usesPending) assert.ok(row[5].includes(`\`${f}`) && row[5].includes(pendingFlags[f]), `${r}: ${row[5]}`);
    if (tp === 1 && usesPending.length === 0) assert.match(row[5], /works today/);
  });
}

test("the pending-flag list is exact: each is used by a recipe, named in the README, and refused by the binary", (t) => {
  const used = new Set();
  for (const r of recipes) {
    for (const [, argv] of turbineCommands(renderRecipe(r).objs)) for (const a of argv) used.add(a.split("=")[0]);
  }
  for (const f of Object.keys(pendingFlags)) {
    assert.ok(used.has(f), `${f} is listed as pending but no recipe uses it`);
    assert.ok(readme.includes(`\`${f}\``), `README does not name ${f}`);
  }
  if (!haveBin) return t.skip(`${turbineBin} is not built`);
  for (const f of Object.keys(pendingFlags)) {
    // Once the flag lands, it leaves the list (and the README's "needs" column).
    const res = checkArgs(["worker", f, "fp8"]);
    assert.notEqual(res.code, 0, `${f} is accepted now: remove it from pendingFlags and the README`);
  }
});

test("TURBINE_CHECK_ARGS parses without running: good commands pass, bad flags and values fail", (t) => {
  if (!haveBin) return t.skip(`${turbineBin} is not built`);
  // Would serve forever (and load a model that does not exist) if it ran.
  assert.equal(checkArgs(["worker", "--model", "/nonexistent", "--device", "cuda"]).code, 0);
  assert.equal(checkArgs(["download", "org/model", "--local-dir", "/nonexistent"]).code, 0);
  const bad = checkArgs(["worker", "--dtype", "fp8"]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.out, /--dtype/);
  assert.notEqual(checkArgs(["frontend", "--no-such-flag"]).code, 0);
});

test("turbine doctor --helm-values renders a recipe and checks its commands", (t) => {
  if (!haveBin) return t.skip(`${turbineBin} is not built`);
  const doctor = (values) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TURBINE_")));
    const r = spawnSync(turbineBin, ["doctor", "--json", "--no-loopback", "--port", "0", "--kubectl", "/nonexistent",
      "--helm", tools().helm, "--chart", chartDir, "--helm-values", values], { encoding: "utf8", env });
    return { code: r.status, report: JSON.parse(r.stdout) };
  };
  const ok = doctor(valuesFile("llama-3.1-8b/agg"));
  const hv = ok.report.checks.find((c) => c.id === "helm.values");
  assert.equal(hv.status, "pass", hv.summary);
  assert.ok(hv.details.files[0].commands.length >= 2);
  // The 70B recipes' flags have all landed (`--kv-cache-dtype fp8`, issue 28): their commands parse.
  const fp8 = doctor(valuesFile("deepseek-r1-distill-llama-70b-fp8/single-node"));
  const hp = fp8.report.checks.find((c) => c.id === "helm.values");
  assert.equal(hp.status, "pass", hp.summary);
});
