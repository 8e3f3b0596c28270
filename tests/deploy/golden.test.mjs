// Golden renders: `helm template` output for the default values and each example, checked in under
// tests/deploy/golden/. A change to the chart that alters a manifest fails here until the golden file
// is rewritten on purpose: UPDATE_GOLDEN=1 make deploy-test (then review the diff).
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { examples, here, template } from "./lib.mjs";

const update = process.env.UPDATE_GOLDEN === "1";

for (const ex of [undefined, ...examples]) {
  const name = ex ?? "default";
  test(`helm template matches golden/${name}.yaml`, () => {
    const file = path.join(here, "golden", `${name}.yaml`);
    const rendered = template(ex);
    if (update) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, rendered);
      return;
    }
    assert.ok(fs.existsSync(file), `${file} is missing: run UPDATE_GOLDEN=1 make deploy-test`);
    const golden = fs.readFileSync(file, "utf8");
    if (rendered !== golden) {
      const a = golden.split("\n");
      const b = rendered.split("\n");
      let i = 0;
      while (i < a.length && a[i] === b[i]) i++;
      assert.fail(`golden/${name}.yaml differs from the render at line ${i + 1}:\n` +
        `  golden:   ${JSON.stringify(a[i])}\n  rendered: ${JSON.stringify(b[i])}\n` +
        "If the change is intended: UPDATE_GOLDEN=1 make deploy-test, and review the diff.");
    }
  });
}
