# Table and SVG charts of a bench/planner_sim.sh run (docs/PERFORMANCE.md, issue 23).
# Usage: python3 bench/planner_sim_report.py OUTDIR
# For each run folder (planner, peak, mean):
#   SLA attainment = requests within both targets / requests sent (errors count as misses);
#   worker-seconds = the time every worker process lived (started -> exited, draining included)
#     within the benchmark's window, from the planner's decision log, in simulated seconds;
#   flaps = a pool size left and re-entered (A -> B -> A) within the scale-down window.
# Writes OUTDIR/planner_sim_replicas.svg (workers and offered rate over the day) and
# OUTDIR/planner_sim_sla.svg (SLA attainment per minute of the day), and prints a Markdown table.
import csv
import html
import json
import os
import sys

out = sys.argv[1]
fleets = json.load(open(os.path.join(out, "fleets.json")))
day = json.load(open(os.path.join(out, "day.json")))
S = fleets["speedup"]
TTFT, ITL = fleets["ttft_ms"], fleets["itl_ms"]
runs = [r for r in ("planner", "peak", "mean") if os.path.exists(os.path.join(out, r, "bench.json"))]
COLORS = {"planner": "#1f77b4", "peak": "#d62728", "mean": "#2ca02c", "rate": "#888888"}


def load_run(run):
    d = os.path.join(out, run)
    bench = json.load(open(os.path.join(d, "bench.json")))
    t0 = float(open(os.path.join(d, "bench_start")).read())
    t1 = float(open(os.path.join(d, "bench_end")).read())
    lines = [json.loads(x) for x in open(os.path.join(d, "decisions.jsonl")) if x.strip()]
    alive = {}  # worker -> [start, end]
    for e in lines:
        if e.get("event") == "worker_started":
            alive[e["worker"]] = [e["unix_s"], None]
        elif e.get("event") == "worker_exited" and e["worker"] in alive:
            alive[e["worker"]][1] = e["unix_s"]
    ws = 0.0
    for start, end in alive.values():
        end = t1 if end is None else end
        ws += max(0.0, min(end, t1) - max(start, t0))
    # Replicas (starting + ready) after each interval, and live processes, over the day.
    series = []
    for e in lines:
        if e.get("event") == "interval":
            for p in e.get("pools", []):
                series.append(((e["unix_s"] - t0) * S, p["replicas"], p["ready"], p.get("desired", p["replicas"])))
    changes = [(t, d) for (t, r, _, d) in series]
    moves = []  # (time, size before, size after)
    prev = None
    for t, r, _, d in series:
        if prev is not None and r != prev:
            moves.append((t, prev, r))
        prev = r
    # A flap: a size left and re-entered (A -> B -> A) within the scale-down window.
    window = fleets.get("scale_down_window", 4) * fleets["interval_s"] + 1e-9
    flaps = sum(1 for (ta, a0, a1), (tb, b0, b1) in zip(moves, moves[1:])
                if b1 == a0 and tb - ta <= window)
    rows = list(csv.DictReader(open(os.path.join(out, run, "bench.csv"))))
    good = 0
    per_minute = {}
    for r in rows:
        ok = r["ok"] == "1" and float(r["ttft_ms"]) >= 0 and float(r["ttft_ms"]) * S <= TTFT and \
            (int(r["content_chunks"]) < 2 or float(r["itl_mean_ms"]) * S <= ITL)
        good += ok
        minute = int(float(r["start_ms"]) / 1000.0 * S / 60)
        g, n = per_minute.get(minute, (0, 0))
        per_minute[minute] = (g + ok, n + 1)
    n = len(rows)
    return {
        "run": run, "requests": n, "completed": bench["completed"], "errors": bench["errors"],
        "good": good, "attainment": good / n if n else 0.0, "worker_s": ws * S,
        "window_s": (t1 - t0) * S, "series": series, "flaps": flaps, "moves": len(moves),
        "per_minute": per_minute, "max_workers": max((r for _, r, _, _ in series), default=0),
        "sizes": " ".join([str(moves[0][1])] + [str(m[2]) for m in moves]) if moves else "",
        "bench_attainment": bench["good_requests"] / max(1, bench["completed"] + bench["errors"]),
        "ttft_p50": bench["ttft_ms"]["p50"] * S, "ttft_p99": bench["ttft_ms"]["p99"] * S,
        "tpot_p50": bench["tpot_ms"]["p50"] * S, "tpot_p99": bench["tpot_ms"]["p99"] * S,
    }


data = {r: load_run(r) for r in runs}
print(f"Day: {day['requests']} requests over {day['duration_s']:.0f} simulated s, mean "
      f"{day['mean_rate']:.2f} req/s, peak {day['peak_rate']:.2f} req/s, mean input "
      f"{day['mean_input']:.0f} / output {day['mean_output']:.0f} tokens; fleets: peak "
      f"{fleets['peak_workers']}, mean {fleets['mean_workers']} workers; SLA TTFT <= {TTFT} ms, "
      f"ITL <= {ITL} ms (simulated), speedup {S}")
print()
print("| fleet | workers | SLA attainment | errors | worker-seconds (sim.) | vs peak | TTFT p50 / p99 (ms) | TPOT p50 / p99 (ms) | scale moves | flaps |")
print("|---|---|---|---|---|---|---|---|---|---|")
peak_ws = data["peak"]["worker_s"] if "peak" in data else None
for r in runs:
    x = data[r]
    workers = f"1–{x['max_workers']} (planned)" if r == "planner" else str(fleets[f"{r}_workers"])
    vs = f"{x['worker_s'] / peak_ws:.2f}x" if peak_ws else "–"
    print(f"| {r} | {workers} | {100 * x['attainment']:.1f}% ({x['good']}/{x['requests']}) | "
          f"{x['errors']} | {x['worker_s']:.0f} | {vs} | {x['ttft_p50']:.0f} / {x['ttft_p99']:.0f} | "
          f"{x['tpot_p50']:.1f} / {x['tpot_p99']:.1f} | {x['moves']} | {x['flaps']} |")
if "planner" in data and "peak" in data:
    p, k = data["planner"], data["peak"]
    print()
    print(f"planner pool sizes in order: {p['sizes']}")
    print(f"planner vs peak: SLA {100 * (p['attainment'] - k['attainment']):+.1f} points, "
          f"worker-seconds {100 * (1 - p['worker_s'] / k['worker_s']):.1f}% fewer")


# ---- SVG ----
def svg_chart(path, title, ylabel, series, ymax, xmax, note="", steps=None):
    W, H, L, R, T, B = 760, 340, 60, 20, 40, 50
    pw, ph = W - L - R, H - T - B
    sx = lambda x: L + pw * x / xmax
    sy = lambda y: T + ph - ph * y / ymax
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">{html.escape(title)}</text>']
    step = 1 if ymax <= 10 else (2 if ymax <= 20 else 20)
    for k in range(int(ymax / step) + 1):
        y = k * step
        o.append(f'<line x1="{L}" y1="{sy(y):.1f}" x2="{W - R}" y2="{sy(y):.1f}" stroke="#e5e5e5"/>')
        o.append(f'<text x="{L - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    for k in range(0, int(xmax / 60) + 1, max(1, int(xmax / 60 / 8))):
        x = k * 60
        o.append(f'<line x1="{sx(x):.1f}" y1="{T + ph}" x2="{sx(x):.1f}" y2="{T + ph + 4}" stroke="black"/>')
        o.append(f'<text x="{sx(x):.1f}" y="{T + ph + 16}" text-anchor="middle">{k}</text>')
    o.append(f'<line x1="{L}" y1="{T + ph}" x2="{W - R}" y2="{T + ph}" stroke="black"/>')
    o.append(f'<line x1="{L}" y1="{T}" x2="{L}" y2="{T + ph}" stroke="black"/>')
    o.append(f'<text x="{L + pw / 2}" y="{H - 12}" text-anchor="middle">simulated minutes of the day</text>')
    o.append(f'<text x="14" y="{T + ph / 2}" transform="rotate(-90 14 {T + ph / 2})" text-anchor="middle">{ylabel}</text>')
    for i, (name, color, pts, dashed) in enumerate(series):
        if not pts:
            continue
        d = " ".join(f"{'M' if j == 0 else 'L'}{sx(x):.1f},{sy(min(y, ymax)):.1f}" for j, (x, y) in enumerate(pts))
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        o.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.8"{dash}/>')
        o.append(f'<rect x="{L + 10 + i * 170}" y="{T + 4}" width="10" height="3" fill="{color}"/>'
                 f'<text x="{L + 24 + i * 170}" y="{T + 9}">{html.escape(name)}</text>')
    if note:
        o.append(f'<text x="{W - R}" y="{T - 6}" text-anchor="end" fill="#555">{note}</text>')
    o.append("</svg>")
    open(path, "w").write("\n".join(o))


def stepped(series):
    pts = []
    for t, r, _, _ in series:
        if pts:
            pts.append((t, pts[-1][1]))
        pts.append((t, r))
    return pts


xmax = day["duration_s"] * 1.05
shape = day["shape"]
rate_pts = [(f * day["duration_s"], m * day["base_rate"]) for f, m in shape]
lines = []
for r in runs:
    pts = stepped(data[r]["series"])
    lines.append((f"{r} workers", COLORS[r], pts, False))
lines.append(("offered req/s (shape)", COLORS["rate"], rate_pts, True))
ymax = max([fleets["peak_workers"] + 1] + [data[r]["max_workers"] + 1 for r in runs])
svg_chart(os.path.join(out, "planner_sim_replicas.svg"),
          "Workers over the day (planner vs fixed fleets) and the offered rate",
          "workers / requests per s", lines, ymax, xmax,
          note=f"interval {fleets['interval_s']} s, predictor {fleets['predictor']}")
lines = []
for r in runs:
    pm = data[r]["per_minute"]
    pts = [(m * 60 + 30, 100.0 * g / n) for m, (g, n) in sorted(pm.items())]
    lines.append((f"{r} ({100 * data[r]['attainment']:.1f}%)", COLORS[r], pts, False))
svg_chart(os.path.join(out, "planner_sim_sla.svg"),
          f"SLA attainment per simulated minute (TTFT ≤ {TTFT} ms and ITL ≤ {ITL} ms)", "% of requests",
          lines, 100, xmax)
