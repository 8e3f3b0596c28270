# A day of load for the planner simulation (docs/PERFORMANCE.md, issue 23): the Mooncake
# conversation trace's requests, in their order (so conversations keep sharing prefixes), with new
# arrival times that follow a day's shape compressed into DURATION seconds:
#   night 0.3x, morning ramp to 1x, 1x, a 3x burst (ramped up and down in 3% of the day each),
#   back to 1x, evening ramp down, a quiet tail at 0.2x.
# Arrivals are a non-homogeneous Poisson process (thinning, seeded) with rate BASE x shape(t).
# Usage: python3 bench/planner_day_trace.py IN.jsonl OUT.jsonl DURATION_S BASE_RATE [SEED]
# Prints one JSON line: requests, mean/peak rate, mean input/output length, the shape.
import json
import random
import sys

SHAPE = [(0.00, 0.3), (0.10, 0.3), (0.35, 1.0), (0.50, 1.0), (0.53, 3.0), (0.66, 3.0),
         (0.69, 1.0), (0.78, 1.0), (0.88, 0.2), (1.00, 0.2)]


def shape(f):
    for (f0, m0), (f1, m1) in zip(SHAPE, SHAPE[1:]):
        if f <= f1:
            return m0 + (m1 - m0) * (f - f0) / (f1 - f0)
    return SHAPE[-1][1]


def main():
    src, dst, duration, base = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    rng = random.Random(int(sys.argv[5]) if len(sys.argv) > 5 else 23)
    peak = base * max(m for _, m in SHAPE)
    times, t = [], 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= duration:
            break
        if rng.random() < base * shape(t / duration) / peak:
            times.append(t)
    requests = [json.loads(line) for line in open(src) if line.strip()]
    if len(times) > len(requests):
        sys.exit(f"the trace has {len(requests)} requests, the day needs {len(times)}")
    with open(dst, "w") as out:
        for t, r in zip(times, requests):
            r = dict(r)
            r["timestamp"] = int(round(t * 1000.0))
            out.write(json.dumps(r) + "\n")
    used = requests[: len(times)]
    mean_shape = sum(shape((i + 0.5) / 1000) for i in range(1000)) / 1000
    print(json.dumps({
        "requests": len(times), "duration_s": duration, "base_rate": base,
        "mean_rate": len(times) / duration, "expected_mean_rate": base * mean_shape,
        "peak_rate": peak, "mean_input": sum(r["input_length"] for r in used) / len(used),
        "mean_output": sum(r["output_length"] for r in used) / len(used), "shape": SHAPE}))


main()
