#!/usr/bin/env python3
"""Start-up time, resident memory and single-stream decode speed of `turbine run`.

Usage: bench/single_stream.py --turbine build/turbine [--model FILE] [--peer-cmd "CMD"] [--runs N]

Start-up: time from exec to the first 200 from /health. Memory: VmRSS and VmHWM of the server
after start-up and after the generation. Speed: greedy /v1/completions from BOS with
max_tokens=255 (ignore_eos), tokens/s = completion tokens / wall time of the request, best of
--runs. --peer-cmd runs a peer (e.g. llama2.c's run.c, which you build yourself outside this
repository) whose stdout/stderr contains "achieved tok/s: X"; the ratio is printed beside it.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":")
                out[k] = int(v.split()[0])
    return out


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--turbine", default="build/turbine")
    shared = os.environ.get("TURBINE_SHARED", os.path.join(os.path.dirname(__file__), "../../shared"))
    ap.add_argument("--model", default=os.path.join(shared, "models/stories260K/stories260K.gguf"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--peer-cmd", default=None)
    args = ap.parse_args()

    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([args.turbine, "--log-level", "warn", "run", "--model", args.model, "--host", "127.0.0.1",
                             "--port", str(port), "--threads", str(args.threads),
                             "--served-model-name", "m"])
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            with urllib.request.urlopen(base + "/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.002)
        if time.perf_counter() - t0 > 60:
            proc.kill()
            sys.exit("server did not start")
    startup_ms = (time.perf_counter() - t0) * 1000
    mem_start = rss_kib(proc.pid)

    best = 0.0
    for _ in range(args.runs):
        t = time.perf_counter()
        r = post(base + "/v1/completions", {"model": "m", "prompt": "", "max_tokens": 255,
                                            "temperature": 0, "ignore_eos": True})
        dt = time.perf_counter() - t
        best = max(best, r["usage"]["completion_tokens"] / dt)
    mem_end = rss_kib(proc.pid)
    proc.terminate()
    proc.wait(timeout=30)

    result = {"startup_ms": round(startup_ms, 1), "rss_kib_after_start": mem_start["VmRSS"],
              "rss_kib_after_generation": mem_end["VmRSS"], "peak_rss_kib": mem_end["VmHWM"],
              "turbine_tokens_per_s": round(best, 1)}
    if args.peer_cmd:
        peer_best = 0.0
        for _ in range(args.runs):
            out = subprocess.run(args.peer_cmd, shell=True, capture_output=True, text=True)
            m = re.search(r"achieved tok/s: ([0-9.]+)", out.stdout + out.stderr)
            if m:
                peer_best = max(peer_best, float(m.group(1)))
        result["peer_tokens_per_s"] = round(peer_best, 1)
        if peer_best > 0:
            result["ratio_turbine_over_peer"] = round(best / peer_best, 3)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
