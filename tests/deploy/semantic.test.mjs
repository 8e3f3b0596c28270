// The semantic layer in the chart (semanticRouter): its config as a ConfigMap mounted into the
// frontend and passed as --semantic-config; values the schema refuses; and the rendered config
// read by the turbine binary itself (a frontend starts on it, a bad one is refused naming the key).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { byKindName, chartDir, container, flags, helm, render, repo, writeTemp } from "./lib.mjs";

const turbineBin = path.resolve(repo, process.env.TURBINE_BIN ?? "build/turbine");
const exampleValues = YAML.parse(
  fs.readFileSync(path.join(chartDir, "examples", "semantic-router.yaml"), "utf8"));

function frontendOf(objs) {
  return byKindName(objs).get("Deployment/turbine-frontend");
}

test("the semantic-router example mounts its config and passes --semantic-config", () => {
  const objs = render("semantic-router");
  const cm = byKindName(objs).get("ConfigMap/turbine-semantic-router");
  assert.ok(cm, "no ConfigMap/turbine-semantic-router");
  assert.deepEqual(Object.keys(cm.data), ["semantic.yaml"]);
  assert.deepEqual(YAML.parse(cm.data["semantic.yaml"]), exampleValues.semanticRouter.config);
  const fe = frontendOf(objs);
  const c = container(fe);
  assert.equal(flags(c.args)["--semantic-config"], "/etc/turbine/semantic/semantic.yaml");
  const mount = c.volumeMounts.find((m) => m.name === "semantic-config");
  assert.equal(mount.mountPath, "/etc/turbine/semantic");
  assert.equal(mount.readOnly, true);
  assert.equal(mount.subPath, undefined, "a subPath mount never sees ConfigMap updates");
  const vol = fe.spec.template.spec.volumes.find((v) => v.name === "semantic-config");
  assert.equal(vol.configMap.name, "turbine-semantic-router");
  // The encoder model folder lives on the model PVC, which the frontend mounts too.
  assert.ok(c.volumeMounts.some((m) => m.name === "model" && m.mountPath === "/data"));
});

test("without semanticRouter.enable nothing is rendered for it", () => {
  const objs = render(undefined);
  assert.ok(!objs.some((o) => o.kind === "ConfigMap" && o.metadata.name.endsWith("semantic-router")));
  const c = container(frontendOf(objs));
  assert.equal(flags(c.args)["--semantic-config"], undefined);
  assert.ok(!c.volumeMounts.some((m) => m.name === "semantic-config"));
});

const rejected = [
  ["enable without a config", "semanticRouter:\n  enable: true\n", [/config/]],
  ["an unknown top-level config key", "semanticRouter:\n  enable: true\n  config:\n    colour: blue\n",
    [/colour/]],
  ["a typo beside enable", "semanticRouter:\n  enabled: true\n", [/enabled/]],
  ["virtual_models not a list", "semanticRouter:\n  enable: true\n  config:\n    virtual_models: MoM\n",
    [/virtual_models/]],
];
for (const [what, yaml, patterns] of rejected) {
  test(`the values schema rejects ${what}`, () => {
    const tpl = helm(["template", "turbine", chartDir, "-f", writeTemp("bad.yaml", yaml)]);
    assert.notEqual(tpl.code, 0, `helm template accepted:\n${yaml}`);
    assert.match(tpl.stderr, /values don't meet the specifications of the schema/);
    for (const p of patterns) assert.match(tpl.stderr, p);
  });
}

// Starts `turbine frontend --discovery memory --semantic-config FILE`; resolves with
// {started, log} once it serves or exits.
function startFrontend(configFile) {
  return new Promise((resolve) => {
    const proc = spawn(turbineBin, ["frontend", "--discovery", "memory", "--host", "127.0.0.1",
      "--port", "0", "--semantic-config", configFile], { stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    let started = false;
    const timer = setTimeout(() => proc.kill("SIGKILL"), 60000);
    const onData = (d) => {
      log += d.toString();
      if (!started && /serving on http/.test(log)) {
        started = true;
        proc.kill("SIGTERM");
      }
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", onData);
    proc.on("exit", (code) => { clearTimeout(timer); resolve({ started, code, log }); });
  });
}

test("turbine reads the rendered config; a bad one is refused naming the key", async (t) => {
  if (!fs.existsSync(turbineBin)) {
    if (process.env.CI === "true") assert.fail(`${turbineBin} is missing`);
    t.skip(`${turbineBin} is missing (build it, or set TURBINE_BIN)`);
    return;
  }
  const cm = byKindName(render("semantic-router")).get("ConfigMap/turbine-semantic-router");
  // The encoder folder is a path in the pod; here it is the tiny fixture embedding model.
  const config = YAML.parse(cm.data["semantic.yaml"]);
  config.encoder_models.embedding = path.join(repo, "tests/fixtures/encoders/bert");
  const good = await startFrontend(writeTemp("semantic.yaml", YAML.stringify(config)));
  assert.ok(good.started, good.log);
  assert.match(good.log, /semantic: 2 decisions, virtual models \[MoM, auto\]/);

  config.jailbreak.threshold = 1.5;
  const bad = await startFrontend(writeTemp("semantic.yaml", YAML.stringify(config)));
  assert.equal(bad.started, false);
  assert.notEqual(bad.code, 0);
  assert.match(bad.log, /jailbreak\.threshold: out of range/);
});
