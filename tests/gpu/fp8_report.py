#!/usr/bin/env python3
"""The FP8 A/B table of `tests/gpu/run.sh fp8` (issue 28) from turbine_generate --bench logs.

Usage: fp8_report.py --out TABLE.md LABEL=LOG [LABEL=LOG ...]   (the first label is the baseline)
Per run: decode tok/s at batch 1 and at the largest batch, prefill tok/s of the longest prompts,
KV blocks (the sequences capacity at the same memory), each with its ratio to the baseline.
"""
import argparse
import re
import sys

BENCH_PREFILL = re.compile(r"bench \S+: (\d+) seqs x (\d+) prompt tokens: prefill (\d+) tok/s")
BENCH_DECODE = re.compile(r"bench \S+: (\d+) seqs x (\d+) output tokens: decode ([\d.]+) tok/s")
READY = re.compile(r"backend ready in [\d.]+ s: (\d+) KV blocks of (\d+)")


def parse(path):
    r = {"prefill": {}, "decode": {}, "blocks": None, "error": None}
    try:
        text = open(path).read()
    except OSError as e:
        r["error"] = str(e)
        return r
    for m in BENCH_PREFILL.finditer(text):
        r["prefill"][(int(m[1]), int(m[2]))] = float(m[3])
    for m in BENCH_DECODE.finditer(text):
        r["decode"][int(m[1])] = float(m[3])
    m = READY.search(text)
    if m:
        r["blocks"] = int(m[1])
    if not r["decode"] and not r["prefill"]:
        err = [l for l in text.splitlines() if "rror" in l or "backend:" in l]
        r["error"] = (err[-1] if err else "no bench lines")[:160]
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args()
    runs = [(lr.split("=", 1)[0], parse(lr.split("=", 1)[1])) for lr in args.runs]
    base = runs[0][1]
    batches = sorted({b for _, r in runs for b in r["decode"]})
    prefills = sorted({k for _, r in runs for k in r["prefill"]}, key=lambda k: k[0] * k[1])
    cols = [("decode", b) for b in ([batches[0], batches[-1]] if len(batches) > 1 else batches)]
    if prefills:
        cols.append(("prefill", prefills[-1]))

    def cell(r, kind, key):
        v, b = r[kind].get(key), base[kind].get(key)
        if v is None:
            return "-"
        return f"{v:,.0f} ({v / b:.2f}x)" if b else f"{v:,.0f}"

    head = ["run"] + [f"decode b={k} tok/s" if kind == "decode" else
                      f"prefill {k[0]}x{k[1]} tok/s" for kind, k in cols] + ["KV blocks"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, r in runs:
        if r["error"]:
            lines.append(f"| {label} | error: {r['error']} |" + " |" * (len(head) - 2))
            continue
        kv = "-" if r["blocks"] is None else (
            f"{r['blocks']:,} ({r['blocks'] / base['blocks']:.2f}x)" if base["blocks"] else
            f"{r['blocks']:,}")
        lines.append("| " + " | ".join([label] + [cell(r, kind, k) for kind, k in cols] + [kv]) +
                     " |")
    open(args.out, "w").write("\n".join(lines) + "\n")
    return 0 if not any(r["error"] for _, r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
