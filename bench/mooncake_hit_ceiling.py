# Offline ceiling of the prefix-cache hit rate for the first N requests of the Mooncake trace:
# the share of prompt tokens in leading 512-token hash blocks (a leading run of hash_ids) seen
# before, with one infinite cache, and with 4 infinite caches fed round-robin.
# Usage: python3 bench/mooncake_hit_ceiling.py [trace.jsonl] [N...]
import json
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/mooncake_conversation_trace.jsonl"
windows = [int(a) for a in sys.argv[2:]] or [500, 1000, 1500, 2000, 4000]
rows = [json.loads(line) for line in open(path)]


def hit_rate(n, caches):
    seen = [set() for _ in range(caches)]
    total = hit = 0
    for i, r in enumerate(rows[:n]):
        ids, length = r["hash_ids"], r["input_length"]
        s = seen[i % caches]
        k = 0
        while k < len(ids) and ids[k] in s:
            k += 1
        hit += min(k * 512, length)
        total += length
        s.update(ids)
    return hit / total


for n in windows:
    print(f"N={n:5d} trace {rows[n - 1]['timestamp'] / 1000:6.0f} s  one cache "
          f"{hit_rate(n, 1) * 100:5.1f}%  round-robin x4 {hit_rate(n, 4) * 100:5.1f}%")
