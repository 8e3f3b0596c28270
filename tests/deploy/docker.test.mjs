// deploy/docker/Dockerfile{,.cuda}: checked statically (no docker here), and their runtime-dependency
// step - ldd + dpkg -S on the binary - run for real against the locally built turbine.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { repo, writeTemp } from "./lib.mjs";

const turbineBin = path.resolve(repo, process.env.TURBINE_BIN ?? "build/turbine");

// Instructions of a Dockerfile, continuation lines joined, grouped by stage.
function parse(file) {
  const text = fs.readFileSync(file, "utf8").replace(/\\\n/g, " ");
  const stages = [];
  const args = [];
  for (const line of text.split("\n")) {
    const m = line.match(/^([A-Z]+)\s+(.*)$/);
    if (!m) continue;
    const [, op, rest] = m;
    if (op === "FROM") {
      const [, image, name] = rest.match(/^(\S+)(?:\s+AS\s+(\S+))?/i);
      stages.push({ image, name, ops: [] });
    } else if (stages.length) {
      stages.at(-1).ops.push({ op, rest });
    } else if (op === "ARG") {
      args.push(rest);
    }
  }
  return { stages, args };
}

for (const name of ["Dockerfile", "Dockerfile.cuda"]) {
  const file = path.join(repo, "deploy/docker", name);
  const { stages } = parse(file);
  const runtime = stages.at(-1);
  const build = stages.find((s) => s.name === "build");

  test(`${name}: Debian 12 build stage with scripts/install-deps and a Release build`, () => {
    assert.equal(build.image, "debian:12");
    const runs = build.ops.filter((o) => o.op === "RUN").map((o) => o.rest).join("\n");
    assert.match(runs, /install-deps/);
    assert.match(runs, /-DCMAKE_BUILD_TYPE=Release/);
    assert.match(runs, /--target turbine/);
    if (name.endsWith(".cuda")) {
      assert.match(runs, /-DTURBINE_CUDA=ON/);
      assert.match(runs, /CMAKE_CUDA_ARCHITECTURES="\$\{CUDA_ARCHITECTURES\}"/);
      assert.match(fs.readFileSync(file, "utf8"), /ARG CUDA_ARCHITECTURES="80;90a"/);
      assert.ok(stages.some((s) => /^nvidia\/cuda:\$\{CUDA_VERSION\}-devel-/.test(s.image)));
      assert.ok(stages.some((s) => /^nvidia\/cuda:\$\{CUDA_VERSION\}-runtime-/.test(s.image)));
    }
    // Everything COPY'd from the context exists in the repository, and the context filter lets it in.
    const ignore = fs.readFileSync(`${file}.dockerignore`, "utf8");
    for (const o of build.ops.filter((o) => o.op === "COPY" && !o.rest.startsWith("--from"))) {
      const src = o.rest.split(/\s+/)[0];
      assert.ok(fs.existsSync(path.join(repo, src)), `COPY ${src}: not in the repository`);
      assert.ok(ignore.includes(`!${src}`), `COPY ${src}: excluded by ${name}.dockerignore`);
    }
  });

  test(`${name}: slim non-root runtime stage with only the binary and its libraries`, () => {
    assert.equal(runtime.image, "debian:12-slim");
    const ops = (op) => runtime.ops.filter((o) => o.op === op).map((o) => o.rest);
    assert.deepEqual(ops("ENTRYPOINT"), ['["turbine"]']);
    assert.deepEqual(ops("EXPOSE"), ["8000"]);
    assert.deepEqual(ops("USER"), ["10001:10001"]);
    const runs = ops("RUN").join("\n");
    assert.match(runs, /--no-install-recommends/);
    assert.match(runs, /runtime-packages\.txt/);
    assert.doesNotMatch(runs, /install-deps|build-essential|cmake|-dev\b/);
    assert.ok(ops("COPY").some((c) => /--from=build \/out\/usr\/local\/bin\/turbine /.test(c)));
  });
}

test("the Dockerfile's ldd + dpkg -S step finds the Debian package of every library turbine links", (t) => {
  if (!fs.existsSync(turbineBin)) return t.skip(`${turbineBin} is not built`);
  if (spawnSync("sh", ["-c", "command -v dpkg && command -v ldd"]).status !== 0) return t.skip("no dpkg/ldd");
  const { stages } = parse(path.join(repo, "deploy/docker/Dockerfile"));
  const step = stages.find((s) => s.name === "build").ops.find((o) => o.op === "RUN" && o.rest.includes("ldd")).rest;
  const out = writeTemp("runtime-packages.txt", "");
  const script = step.split("/out/usr/local/bin/turbine").join(turbineBin).split("/out/runtime-packages.txt").join(out);
  const r = spawnSync("sh", ["-c", script], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const pkgs = fs.readFileSync(out, "utf8").split("\n").filter(Boolean);
  for (const p of ["libboost-json1.81.0", "libprometheus-cpp-core1.0", "libspdlog1.10", "libcurl4", "libstdc++6"]) {
    assert.ok(pkgs.includes(p), `${p} missing from ${pkgs}`);
  }
  for (const p of pkgs) {
    assert.match(p, /^[a-z0-9][a-z0-9.+-]+$/, `not a package name: ${p}`);
    assert.doesNotMatch(p, /-dev$/, `${p}: a -dev package in the runtime image`);
  }
  // Every shared library ldd resolves belongs to one of the listed packages (one dpkg -S call).
  const libs = spawnSync("ldd", [turbineBin], { encoding: "utf8" }).stdout
    .split("\n").map((l) => l.match(/=> (\/\S+)/)?.[1]).filter(Boolean);
  assert.ok(libs.length > 5);
  const candidates = libs.map((f) => [f, fs.realpathSync(f)]);
  const owner = new Map();
  const q = spawnSync("dpkg", ["-S", ...new Set(candidates.flat())], { encoding: "utf8" });
  for (const line of q.stdout.split("\n").filter(Boolean)) {
    const at = line.indexOf(": /");
    owner.set(line.slice(at + 2), line.slice(0, at).split(/[:,]/)[0]);
  }
  for (const [f, real] of candidates) {
    const o = owner.get(f) ?? owner.get(real);
    assert.ok(o, `no Debian package owns ${f}`);
    assert.ok(pkgs.includes(o), `${o} owns ${f} but is not in the runtime list`);
  }
});
