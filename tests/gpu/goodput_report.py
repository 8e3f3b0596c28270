#!/usr/bin/env python3
"""Goodput at SLO, before and after a latency target (issue 29), from `turbine bench` reports.

Reads the JSON (and, when present next to it, the per-request CSV) of sweeps made with
`--sweep-concurrency ... --slo ttft=T,itl=I`, prints one table row per (run, concurrency) and
writes an SVG of goodput vs concurrency (raw throughput dashed, TTFT p99 and ITL p99 beside).

Goodput = output tokens of the requests that meet the SLO (TTFT <= T and the request's mean ITL
<= I, as `turbine bench` judges them) per second of the point. A closed-loop point starts all its
`concurrency` requests at once; their prefill alone can take longer than the TTFT target, so the
table also gives the goodput of the requests started after that initial burst ("steady").

A mean ITL hides stalls: a request that waits 250 ms once while an 8k-token prefill runs still
averages well under 50 ms over 256 tokens. "No-stall goodput" also requires every gap between a
request's tokens (the CSV's itl_max_ms) to be <= --max-gap-factor (2) x the ITL target, which is
what a streaming reader notices. It needs the CSV.

--speedup S: reports of a mock engine run with `--speedup S` (simulated seconds per wall second)
and an SLO given in wall milliseconds; times are multiplied by S and rates divided by S so that
everything is in simulated time. Standard library only (it runs on the GPU machine too).

Usage: goodput_report.py [--speedup S] [--svg OUT.svg] NAME=REPORT.json [NAME=REPORT.json ...]
"""
import argparse
import csv
import json
import os
import sys

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"]


def load(path, speedup, gap_factor):
    with open(path) as f:
        rep = json.load(f)
    slo = rep["config"].get("slo", {})
    ttft_slo = slo.get("ttft_ms", float("inf")) * speedup
    itl_slo = slo.get("itl_ms", float("inf")) * speedup
    max_gap = gap_factor * itl_slo
    # Requests of a point's warmup (`--warmup-s`) are out of the JSON's statistics: out of the
    # CSV's here too (wall milliseconds, as start_ms).
    warmup_ms = rep["config"].get("warmup_s", 0) * 1000.0
    rows = {}
    csv_path = os.path.splitext(path)[0] + ".csv"
    if os.path.exists(csv_path):
        with open(csv_path) as f:
            for r in csv.DictReader(f):
                if float(r["start_ms"]) >= warmup_ms:
                    rows.setdefault(int(r["point"]), []).append(r)
    points = []
    for i, p in enumerate(rep["points"]):
        c = p["concurrency"]
        pt = {
            "concurrency": c,
            "completed": p["completed"],
            "warmup_excluded": p.get("warmup_excluded", 0),
            "errors": p["errors"],
            "good": p["good_requests"],
            "raw": p["output_tokens_per_s"] / speedup,
            "goodput": p.get("goodput_output_tokens_per_s", 0.0) / speedup,
            "ttft_p50": p["ttft_ms"]["p50"] * speedup,
            "ttft_p99": p["ttft_ms"]["p99"] * speedup,
            "itl_p50": p["itl_ms"]["p50"] * speedup,
            "itl_p99": p["itl_ms"]["p99"] * speedup,
            "tpot_p50": p["tpot_ms"]["p50"] * speedup,
            "nostall": None,
            "nostall_good": None,
            "steady": None,
            "steady_ttft_p99": None,
        }
        done = [r for r in rows.get(i, []) if r["ok"] == "1"]
        if done:
            start = min(float(r["start_ms"]) for r in done)
            end = max(float(r["start_ms"]) + float(r["e2e_ms"]) for r in done)
            good = [
                r for r in done
                if 0 <= float(r["ttft_ms"]) * speedup <= ttft_slo
                and float(r["itl_mean_ms"]) * speedup <= itl_slo
                and float(r["itl_max_ms"]) * speedup <= max_gap
            ]
            pt["nostall_good"] = len(good)
            if end > start:
                pt["nostall"] = (sum(int(r["output_tokens"]) for r in good) /
                                 ((end - start) / 1000.0 * speedup))
        reqs = [r for r in done if int(r["index"]) >= c]
        if reqs:
            start = min(float(r["start_ms"]) for r in reqs)
            end = max(float(r["start_ms"]) + float(r["e2e_ms"]) for r in reqs)
            good = [
                r for r in reqs
                if 0 <= float(r["ttft_ms"]) * speedup <= ttft_slo
                and float(r["itl_mean_ms"]) * speedup <= itl_slo
            ]
            if end > start:
                secs = (end - start) / 1000.0 * speedup
                pt["steady"] = sum(int(r["output_tokens"]) for r in good) / secs
            ttfts = sorted(float(r["ttft_ms"]) * speedup for r in reqs)
            pt["steady_ttft_p99"] = ttfts[min(len(ttfts) - 1, int(0.99 * (len(ttfts) - 1) + 0.5))]
        points.append(pt)
    return {"ttft_slo": ttft_slo, "itl_slo": itl_slo, "max_gap": max_gap, "points": points,
            "ramp_s": rep["config"].get("ramp_up_s", 0) * speedup, "warmup_s": warmup_ms / 1000.0 * speedup}


def table(runs):
    out = []
    hdr = ("| run | concurrency | output tok/s | goodput tok/s | met SLO | TTFT p50 / p99 (ms) | "
           "ITL p50 / p99 (ms) | TPOT p50 (ms) | steady goodput tok/s | steady TTFT p99 (ms) | "
           "no-stall goodput tok/s | met no-stall |")
    out.append(hdr)
    out.append("|" + "---|" * 12)
    for name, run in runs:
        for p in run["points"]:
            n = p["completed"] + p["errors"]
            steady = "-" if p["steady"] is None else f"{p['steady']:,.0f}"
            st99 = "-" if p["steady_ttft_p99"] is None else f"{p['steady_ttft_p99']:,.0f}"
            ns = "-" if p["nostall"] is None else f"{p['nostall']:,.0f}"
            nsg = "-" if p["nostall_good"] is None else f"{p['nostall_good']}/{n}"
            out.append(
                f"| {name} | {p['concurrency']} | {p['raw']:,.0f} | {p['goodput']:,.0f} | "
                f"{p['good']}/{n} | {p['ttft_p50']:,.0f} / {p['ttft_p99']:,.0f} | "
                f"{p['itl_p50']:.1f} / {p['itl_p99']:.1f} | {p['tpot_p50']:.1f} | {steady} | {st99} | "
                f"{ns} | {nsg} |")
    return "\n".join(out)


def nice_top(v):
    if v <= 0:
        return 1.0
    mag = 10 ** len(str(int(v))) / 10
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= v:
            return m * mag
    return 10 * mag


def panel(x0, y0, w, h, title, xs, series, ylabel):
    """series: (name, color, style: False solid, True dashed, "dot" dotted, [(x, y)])"""
    s = []
    ymax = nice_top(max([y for *_, pts in series for _, y in pts] + [1e-9]) * 1.05)
    xmin, xmax = min(xs), max(xs)
    if xmax == xmin:
        xmax = xmin + 1

    def px(x):
        return x0 + (x - xmin) / (xmax - xmin) * w

    def py(y):
        return y0 + h - y / ymax * h

    s.append(f"<text x='{x0 + w / 2}' y='{y0 - 12}' text-anchor='middle' font-size='14'>"
             f"{title}</text>")
    s.append(f"<rect x='{x0}' y='{y0}' width='{w}' height='{h}' fill='none' stroke='#888'/>")
    for k in range(6):
        yv = ymax * k / 5
        s.append(f"<line x1='{x0}' x2='{x0 + w}' y1='{py(yv):.1f}' y2='{py(yv):.1f}' "
                 f"stroke='#eee'/>")
        s.append(f"<text x='{x0 - 6}' y='{py(yv) + 4:.1f}' text-anchor='end' font-size='11'>"
                 f"{yv:,.0f}</text>")
    for x in xs:
        s.append(f"<text x='{px(x):.1f}' y='{y0 + h + 16}' text-anchor='middle' "
                 f"font-size='11'>{x}</text>")
    s.append(f"<text x='{x0 + w / 2}' y='{y0 + h + 34}' text-anchor='middle' font-size='12'>"
             f"concurrency</text>")
    s.append(f"<text x='{x0 - 48}' y='{y0 + h / 2}' text-anchor='middle' font-size='12' "
             f"transform='rotate(-90 {x0 - 48} {y0 + h / 2})'>{ylabel}</text>")
    for i, (name, color, dashed, pts) in enumerate(series):
        if not pts:
            continue
        d = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        dash = {False: "", True: " stroke-dasharray='6,4'", "dot": " stroke-dasharray='2,3'"}[dashed]
        s.append(f"<polyline fill='none' stroke='{color}' stroke-width='2'{dash} points='{d}'/>")
        for x, y in pts:
            s.append(f"<circle cx='{px(x):.1f}' cy='{py(y):.1f}' r='3' fill='{color}'/>")
        ly = y0 + 14 + 16 * i
        s.append(f"<line x1='{x0 + 10}' x2='{x0 + 34}' y1='{ly - 4}' y2='{ly - 4}' "
                 f"stroke='{color}' stroke-width='2'{dash}/>")
        s.append(f"<text x='{x0 + 40}' y='{ly}' font-size='11'>{name}</text>")
    return s


def svg(runs, title):
    xs = sorted({p["concurrency"] for _, r in runs for p in r["points"]})
    tput, lat = [], []
    for i, (name, run) in enumerate(runs):
        color = COLORS[i % len(COLORS)]
        pts = run["points"]
        tput.append((f"{name} goodput", color, False,
                     [(p["concurrency"], p["goodput"]) for p in pts]))
        tput.append((f"{name} raw", color, True, [(p["concurrency"], p["raw"]) for p in pts]))
        tput.append((f"{name} no-stall goodput", color, "dot",
                     [(p["concurrency"], p["nostall"]) for p in pts if p["nostall"] is not None]))
        lat.append((f"{name} TTFT p99", color, False,
                    [(p["concurrency"], p["ttft_p99"]) for p in pts]))
        lat.append((f"{name} ITL p99 x10", color, True,
                    [(p["concurrency"], 10 * p["itl_p99"]) for p in pts]))
    W, H = 1000, 420
    body = [f"<svg xmlns='http://www.w3.org/2000/svg' version='1.1' width='{W}' height='{H}' "
            f"font-family='sans-serif'>",
            f"<rect width='{W}' height='{H}' fill='white'/>",
            f"<text x='{W / 2}' y='22' text-anchor='middle' font-size='15'>{title}</text>"]
    body += panel(90, 70, 360, 280, "output tok/s: goodput (solid), no-stall (dotted), raw (dashed)", xs, tput,
                  "output tok/s")
    body += panel(590, 70, 360, 280, "TTFT p99 (solid), ITL p99 x 10 (dashed)", xs, lat, "ms")
    body.append("</svg>")
    return "\n".join(body) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speedup", type=float, default=1.0)
    ap.add_argument("--svg")
    ap.add_argument("--max-gap-factor", type=float, default=2.0)
    ap.add_argument("--title", default="goodput vs concurrency")
    ap.add_argument("reports", nargs="+", help="NAME=REPORT.json")
    a = ap.parse_args()
    runs = []
    for spec in a.reports:
        name, _, path = spec.partition("=")
        if not path:
            name, path = os.path.splitext(os.path.basename(spec))[0], spec
        if not os.path.exists(path):
            print(f"{name}: no report at {path} (left out)", file=sys.stderr)
            continue
        runs.append((name, load(path, a.speedup, a.max_gap_factor)))
    if not runs:
        return 1
    r0 = runs[0][1]
    print(f"SLO: TTFT <= {r0['ttft_slo']:g} ms, mean ITL <= {r0['itl_slo']:g} ms per request "
          f"(no-stall: and every gap <= {r0['max_gap']:g} ms)"
          + (f" (simulated time, speedup {a.speedup:g})" if a.speedup != 1 else ""))
    for name, run in runs:
        if run["ramp_s"] or run["warmup_s"]:
            left_out = ", ".join(f"{p['warmup_excluded']} at {p['concurrency']}" for p in run["points"])
            print(f"{name}: clients ramped up over {run['ramp_s']:g} s; warmup {run['warmup_s']:g} s"
                  + (f" (requests left out: {left_out})" if run["warmup_s"] else ""))
    print(table(runs))
    for name, run in runs:
        best = max(run["points"], key=lambda p: p["goodput"])
        print(f"{name}: best goodput {best['goodput']:,.0f} output tok/s at concurrency "
              f"{best['concurrency']} (TTFT p99 {best['ttft_p99']:,.0f} ms); best raw "
              f"{max(p['raw'] for p in run['points']):,.0f} output tok/s; best no-stall goodput "
              f"{max((p['nostall'] or 0) for p in run['points']):,.0f} output tok/s")
    if a.svg:
        with open(a.svg, "w") as f:
            f.write(svg(runs, a.title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
