// Renders chat-template cases with @huggingface/jinja (the transformers.js renderer), the
// reference for tests/unit/chat/chat_template_parity_test.cpp.
//
// usage: node render_templates.mjs CASES.json OUT.json
//   CASES.json: {"cases": [{"template": "...", "context": {...}, "now": "2024-07-26T10:00:00"}]}
//   OUT.json:   [{"ok": true, "output": "..."} | {"ok": false, "error": "..."}], one per case.
// "now" (optional) pins the clock that strftime_now() reads; run with TZ=UTC for stable dates.
//
// usage: node render_templates.mjs --update-fixture tests/fixtures/chat/feature_cases.json
//   Rewrites each case's "expected" (or "error": true) from the reference renderer.
import { readFileSync, writeFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";

const args = process.argv.slice(2);
const updateFixture = args[0] === "--update-fixture";
const [casesPath, outPath] = updateFixture ? [args[1], args[1]] : args;
if (!casesPath || !outPath) {
  console.error("usage: node render_templates.mjs CASES.json OUT.json | --update-fixture FIXTURE.json");
  process.exit(2);
}

const RealDate = globalThis.Date;
function withClock(now, fn) {
  if (!now) return fn();
  globalThis.Date = class extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(now);
      else super(...args);
    }
    static now() {
      return new RealDate(now).getTime();
    }
  };
  try {
    return fn();
  } finally {
    globalThis.Date = RealDate;
  }
}

const input = JSON.parse(readFileSync(casesPath, "utf8"));
const { cases } = input;
const compiled = new Map();
const results = cases.map((c) => {
  try {
    let template = compiled.get(c.template);
    if (!template) {
      template = new Template(c.template);
      compiled.set(c.template, template);
    }
    const output = withClock(c.now, () => template.render(c.context ?? {}));
    return { ok: true, output };
  } catch (e) {
    return { ok: false, error: String(e?.message ?? e) };
  }
});
if (updateFixture) {
  cases.forEach((c, i) => {
    delete c.expected;
    delete c.error;
    if (results[i].ok) c.expected = results[i].output;
    else c.error = true;
  });
  writeFileSync(outPath, JSON.stringify(input, null, 1) + "\n");
} else {
  writeFileSync(outPath, JSON.stringify(results));
}
