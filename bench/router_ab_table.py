# Markdown rows from a bench/router_ab.sh output folder: TTFT p50/p99, throughput, E2E p50, the
# router's hit rate (cached / prompt blocks at routing time, from /metrics), the engines' own
# prefix-cache hit rate and preemptions.  Usage: python3 bench/router_ab_table.py OUTDIR
import json
import os
import re
import sys

d = sys.argv[1]
names = sorted(f[3:-5] for f in os.listdir(d) if f.startswith("ab_") and f.endswith(".json"))
order = {"kv": 0, "round-robin": 2, "random": 3}
for m in sorted(names, key=lambda n: (order.get(n, 1), n)):
    r = json.load(open(os.path.join(d, f"ab_{m}.json")))
    txt = open(os.path.join(d, f"metrics_{m}.txt")).read()

    def total(name):
        return sum(float(x) for x in re.findall(rf"^{name}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", txt, re.M))

    hit = total("turbine_router_cached_blocks_total") / max(1, total("turbine_router_prompt_blocks_total"))
    eng = total("turbine_engine_prefix_cache_hit_tokens_total") / max(
        1, total("turbine_engine_prefix_cache_queried_tokens_total"))
    print(f"| {m} | {r['ttft_ms']['p50']:.0f} | {r['ttft_ms']['p99']:.0f} | {r['requests_per_s']:.2f} | "
          f"{r['output_tokens_per_s']:.0f} | {r['e2e_ms']['p50']:.0f} | {hit * 100:.1f}% | {eng * 100:.1f}% | "
          f"{total('turbine_engine_preemptions_total'):.0f} | {r['errors']} |")
