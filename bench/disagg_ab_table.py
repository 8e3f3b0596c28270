# Markdown rows from a bench/disagg_ab.sh output folder: per offered rate and fleet, goodput
# (requests/s meeting the SLO, wall clock), the share of requests meeting it, TTFT and ITL p50/p99
# (wall ms; x SPEEDUP = simulated), remote/local prefills and KV moved (from /metrics), and the
# fleet's goodput against the aggregated fleet's at the same rate. With ALT_SLO (simulated ms,
# e.g. ttft=2000,itl=25) and the runs' per-request CSVs, a second goodput column at that SLO.
# Usage: python3 bench/disagg_ab_table.py OUTDIR [SPEEDUP=2] [ALT_SLO]
import csv
import json
import os
import re
import sys

d = sys.argv[1]
sp = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
alt = dict((k, float(v)) for k, v in (x.split("=") for x in sys.argv[3].split(","))) if len(sys.argv) > 3 else None


def alt_goodput(path, duration_s):
    # Requests meeting `alt` (simulated ms; the CSV is wall ms) per wall second, as the bench does.
    if not alt or not os.path.exists(path):
        return None
    good = 0
    for row in csv.DictReader(open(path)):
        if row["ok"] != "1":
            continue
        ttft, itl = float(row["ttft_ms"]) * sp, float(row["itl_mean_ms"]) * sp
        if "ttft" in alt and not (0 <= ttft <= alt["ttft"]):
            continue
        if "itl" in alt and itl > alt["itl"]:
            continue
        good += 1
    return good / duration_s
runs = {}
for f in os.listdir(d):
    m = re.fullmatch(r"ab_(.+)_ts([0-9.]+)\.json", f)
    if m:
        runs.setdefault(float(m.group(2)), {})[m.group(1)] = f


def total(txt, name):
    return sum(float(x) for x in re.findall(rf"^{name}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", txt, re.M))


def order(name):
    m = re.fullmatch(r"(\d+)p(\d+)d(?:c(\d+))?", name)
    return (1, int(m.group(1)), int(m.group(3) or 0)) if m else (0, 0, 0)


alt_head = f" goodput @ {sys.argv[3]} | vs agg |" if alt else ""
print("| rate (`--trace-speedup`) | fleet | goodput (req/s) | met SLO | vs agg | TTFT p50 / p99 (ms, sim) | "
      "ITL p50 / p99 (ms, sim) | TPOT mean (ms, sim) | req/s | remote / local prefills | KV fetched (GB, sim) |" + alt_head)
print("|---" * (11 + (2 if alt else 0)) + "|")
for ts in sorted(runs):
    base = alt_base = None
    for name in sorted(runs[ts], key=order):
        r = json.load(open(os.path.join(d, runs[ts][name])))
        mpath = os.path.join(d, f"metrics_{name}_ts{ts:g}.txt")
        txt = open(mpath).read() if os.path.exists(mpath) else ""
        good = r["goodput_requests_per_s"]
        if base is None and name.startswith("agg"):
            base = good
        ratio = f"{good / base:.2f}x" if base else "-"
        n = r["completed"] + r["errors"]
        met = r["good_requests"] / max(1, n)
        remote = total(txt, "turbine_disagg_remote_prefills_total")
        local = total(txt, "turbine_disagg_local_prefills_total")
        kvb = total(txt, "turbine_engine_kv_(?:transfer|import)_bytes_total") / 1e9
        t, i, tp = r["ttft_ms"], r["itl_ms"], r["tpot_ms"]
        extra = ""
        if alt:
            g2 = alt_goodput(os.path.join(d, runs[ts][name][:-5] + ".csv"), r["duration_s"])
            if g2 is not None and alt_base is None and name.startswith("agg"):
                alt_base = g2
            extra = (f" {g2:.2f} | {g2 / alt_base:.2f}x |" if g2 is not None and alt_base
                     else (f" {g2:.2f} | - |" if g2 is not None else " - | - |"))
        print(f"| {ts:g} | {name} | **{good:.2f}** | {met * 100:.0f}% | {ratio} | {t['p50'] * sp:,.0f} / {t['p99'] * sp:,.0f} | "
              f"{i['p50'] * sp:.1f} / {i['p99'] * sp:.1f} | {tp['mean'] * sp:.1f} | {r['requests_per_s']:.2f} | "
              f"{remote:.0f} / {local:.0f} | {kvb:,.0f} |{extra}")
