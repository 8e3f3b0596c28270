// deploy/grafana/turbine-dashboard.json: well-formed, every metric it queries is documented in
// docs/DEPLOY.md (as existing or planned), names marked existing are really in src/metrics/metrics.h,
// and every name metrics.h defines is documented.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { repo } from "./lib.mjs";

const dash = JSON.parse(fs.readFileSync(path.join(repo, "deploy/grafana/turbine-dashboard.json"), "utf8"));
const header = fs.readFileSync(path.join(repo, "src/metrics/metrics.h"), "utf8");
const defined = new Set([...header.matchAll(/"(turbine_[a-z0-9_]+)"/g)].map((m) => m[1]));
const doc = fs.readFileSync(path.join(repo, "docs/DEPLOY.md"), "utf8");
// | `name` | type | labels | status | meaning |
const table = new Map(doc.split("\n").filter((l) => /^\| `turbine_/.test(l)).map((l) => {
  const [, name, type, labels, status] = l.split("|").map((c) => c.trim());
  return [name.replace(/`/g, ""), { type, labels, status }];
}));
for (const [n, v] of table) assert.ok(["exists", "planned"].includes(v.status), `${n}: status ${v.status}`);
const panels = dash.panels.filter((p) => p.type !== "row");
const exprs = panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr })));
const queried = (expr) => [...expr.matchAll(/\b(turbine_[a-z0-9_]+)/g)].map((m) => m[1]);
const base = (name) => (table.has(name) ? name : name.replace(/_(bucket|sum|count)$/, ""));

test("the dashboard is well-formed: unique ids, panels inside the 24-column grid, queries on the data source variable", () => {
  assert.equal(dash.uid, "turbine-overview");
  const ids = dash.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length);
  for (const p of dash.panels) {
    const g = p.gridPos;
    assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0 && g.y >= 0, `${p.title} outside the grid`);
  }
  assert.ok(dash.templating.list.some((v) => v.name === "datasource" && v.type === "datasource"));
  for (const p of panels) {
    assert.equal(p.datasource.uid, "${datasource}", p.title);
    assert.ok(p.targets.length > 0, `${p.title} has no query`);
    const refs = p.targets.map((t) => t.refId);
    assert.equal(new Set(refs).size, refs.length, `${p.title}: duplicate refIds`);
  }
  // Overlapping panels render on top of each other.
  for (let i = 0; i < dash.panels.length; i++) {
    for (let j = i + 1; j < dash.panels.length; j++) {
      const a = dash.panels[i].gridPos;
      const b = dash.panels[j].gridPos;
      const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
      assert.ok(!overlap, `${dash.panels[i].title} overlaps ${dash.panels[j].title}`);
    }
  }
});

test("the dashboard covers what issue 9 asks for", () => {
  const all = exprs.map((e) => e.expr).join("\n");
  for (const [what, re] of [
    ["request rate by status", /sum by \(status\) \(rate\(turbine_frontend_requests_total/],
    ["TTFT p50", /histogram_quantile\(0\.5, [^\n]*turbine_frontend_time_to_first_token_seconds_bucket/],
    ["TTFT p99", /histogram_quantile\(0\.99, [^\n]*turbine_frontend_time_to_first_token_seconds_bucket/],
    ["ITL p50", /histogram_quantile\(0\.5, [^\n]*turbine_frontend_inter_token_latency_seconds_bucket/],
    ["ITL p99", /histogram_quantile\(0\.99, [^\n]*turbine_frontend_inter_token_latency_seconds_bucket/],
    ["input tokens", /turbine_frontend_input_sequence_tokens/],
    ["output tokens", /turbine_frontend_output_tokens_total/],
    ["in-flight", /turbine_frontend_inflight_requests/],
    ["queued", /turbine_frontend_queued_requests/],
    ["per-worker KV usage", /turbine_engine_kv_used_blocks[^\n]*\/ turbine_engine_kv_total_blocks/],
    ["per-worker prefix hit rate", /turbine_engine_prefix_cache_hit_tokens_total/],
    ["router decisions", /turbine_router_decisions_total/],
    ["cached blocks", /turbine_router_overlap_blocks_bucket/],
    ["KV transfer bandwidth per transport", /sum by \(transport\) \(rate\(turbine_kv_transport_bytes_total/],
    ["prefill queue", /turbine_disagg_prefill_queue_size/],
    ["remote prefills", /rate\(turbine_disagg_remote_prefills_total/],
    ["local prefills", /rate\(turbine_disagg_local_prefills_total/],
  ]) {
    assert.match(all, re, `no panel for ${what}`);
  }
});

test("histogram quantiles aggregate _bucket series by le", () => {
  for (const { panel, expr } of exprs) {
    for (const m of expr.matchAll(/histogram_quantile\(([0-9.]+), sum by \(([^)]*)\) \(rate\((turbine_[a-z0-9_]+)\{/g)) {
      assert.ok(Number(m[1]) > 0 && Number(m[1]) < 1, panel);
      assert.ok(m[2].split(",").map((s) => s.trim()).includes("le"), `${panel}: sum by (${m[2]}) lacks le`);
      assert.match(m[3], /_bucket$/, `${panel}: ${m[3]}`);
      assert.equal(table.get(base(m[3]))?.type, "histogram", `${panel}: ${m[3]} is not a documented histogram`);
    }
    assert.equal((expr.match(/\(/g) ?? []).length, (expr.match(/\)/g) ?? []).length, `${panel}: unbalanced parentheses`);
  }
});

test("every metric the dashboard queries is in docs/DEPLOY.md's metric table", () => {
  const undocumented = [...new Set(exprs.flatMap((e) => queried(e.expr)).map(base))].filter((n) => !table.has(n));
  assert.deepEqual(undocumented, [], "add these to the metric table in docs/DEPLOY.md (status planned until they exist)");
});

test("docs/DEPLOY.md's metric table matches src/metrics/metrics.h", () => {
  assert.ok(table.size >= defined.size);
  const undocumented = [...defined].filter((n) => !table.has(n));
  assert.deepEqual(undocumented, [], "metrics.h defines metrics docs/DEPLOY.md does not list");
  const phantom = [...table].filter(([n, v]) => v.status === "exists" && !defined.has(n)).map(([n]) => n);
  assert.deepEqual(phantom, [], "marked 'exists' in docs/DEPLOY.md but not defined in src/metrics/metrics.h");
  const nowReal = [...table].filter(([n, v]) => v.status === "planned" && defined.has(n)).map(([n]) => n);
  assert.deepEqual(nowReal, [], "defined in metrics.h now: mark them 'exists' in docs/DEPLOY.md");
});
