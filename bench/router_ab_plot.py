# SVG chart of a router A/B load sweep: TTFT p50 and p99 per mode against the offered load.
# Usage: python3 bench/router_ab_plot.py OUT.svg TITLE LABEL=DIR [LABEL=DIR...]
# Each DIR is a bench/router_ab.sh output folder (ab_<mode>.json); LABEL names its load.
import json
import os
import sys

out, title, points = sys.argv[1], sys.argv[2], [a.split("=", 1) for a in sys.argv[3:]]
modes = [("kv", "#4878d0"), ("round-robin", "#ee854a"), ("random", "#6acc64")]
data = {}
for label, d in points:
    for m, _ in modes:
        p = os.path.join(d, f"ab_{m}.json")
        if os.path.exists(p):
            r = json.load(open(p))
            data[(label, m)] = (r["ttft_ms"]["p50"] / 1000, r["ttft_ms"]["p99"] / 1000)
W, H, x0, y0, ph = 720, 340, 60, 280, 230
vmax = max(v[1] for v in data.values()) * 1.1
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>',
       f'<line x1="{x0}" y1="{y0}" x2="{W - 20}" y2="{y0}" stroke="black"/>',
       f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y0 - ph}" stroke="black"/>',
       f'<text x="16" y="{y0 - ph / 2}" transform="rotate(-90 16 {y0 - ph / 2})" text-anchor="middle">TTFT (s)</text>']
for k in range(5):
    v, y = vmax * k / 4, y0 - ph * k / 4
    svg.append(f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end">{v:.1f}</text>')
    svg.append(f'<line x1="{x0}" y1="{y}" x2="{W - 20}" y2="{y}" stroke="#ddd"/>')
gw = (W - 20 - x0) / len(points)
bw = gw * 0.8 / (2 * len(modes))
for i, (label, _) in enumerate(points):
    gx = x0 + i * gw + gw * 0.1
    for j, (m, color) in enumerate(modes):
        if (label, m) not in data:
            continue
        for q, v in enumerate(data[(label, m)]):
            h = ph * v / vmax
            x = gx + (2 * j + q) * bw
            svg.append(f'<rect x="{x}" y="{y0 - h}" width="{bw - 2}" height="{h}" fill="{color}" '
                       f'fill-opacity="{1.0 if q == 0 else 0.45}"/>')
            svg.append(f'<text x="{x + bw / 2}" y="{y0 - h - 3}" text-anchor="middle" font-size="9">{v:.2f}</text>')
    svg.append(f'<text x="{gx + gw * 0.4}" y="{y0 + 16}" text-anchor="middle">{label}</text>')
shown = [(m, c) for m, c in modes if any(k[1] == m for k in data)]
for j, (m, color) in enumerate(shown):
    svg.append(f'<rect x="{x0 + 10 + j * 210}" y="{H - 22}" width="10" height="10" fill="{color}"/>'
               f'<text x="{x0 + 25 + j * 210}" y="{H - 13}">{m} (p50 solid, p99 light)</text>')
svg.append("</svg>")
open(out, "w").write("\n".join(svg))
