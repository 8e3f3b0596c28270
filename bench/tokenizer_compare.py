#!/usr/bin/env python3
"""Single-thread encode throughput: HF `tokenizers` (Rust) vs turbine's tokenizer_bench (issue 3).

Usage:
  bench/tokenizer_compare.py --tokenizer-json T.json[.gz] [--config tokenizer_config.json]
      --bench build/tokenizer_bench [--repeat 5] CORPUS...

Both sides read the same corpus files, cut them into the same ~4 KiB chunks at line ends (as
tokenizer_bench does, like requests), encode each chunk without special tokens, one chunk at a
time on one thread: HF through `Tokenizer.encode` in a Python loop (no encode_batch;
RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false are set before the import), turbine through
tokenizer_bench --json. Each side runs one cold pass, then --repeat timed warm passes (mean).
Prints one JSON object: bytes, chunks, both sides' MB/s (cold and warm) and token counts,
`ratio_warm` = turbine MB/s / HF MB/s (> 1: turbine is faster), and `tokens_match` (the token
totals agree; a mismatch means the comparison is not like for like). The HF figure includes
Python's per-call overhead (about a microsecond per 4 KiB chunk, well under 1% here).
"""
import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from tokenizers import Tokenizer  # noqa: E402  (after the thread settings on purpose)


def chunks_of(data: bytes):
    """Same cut as bench/tokenizer_bench.cpp: >= 4096 bytes, then on to the next line end."""
    out = []
    at = 0
    while at < len(data):
        end = min(len(data), at + 4096)
        nl = data.find(b"\n", end)
        end = len(data) if nl < 0 else nl + 1
        out.append(data[at:end])
        at = end
    return out


def hf_bench(tokenizer_json, corpus, repeat):
    tok = Tokenizer.from_file(tokenizer_json)
    chunks = []
    total = 0
    for path in corpus:
        with open(path, "rb") as f:
            data = f.read()
        total += len(data)
        # A 4 KiB cut can split a UTF-8 sequence only if no newline follows; decode leniently
        # as tokenizer_bench sees the same bytes (corpus files are valid UTF-8 in practice).
        chunks += [c.decode("utf-8", errors="surrogateescape") for c in chunks_of(data)]

    def one_pass():
        t0 = time.perf_counter()
        n = 0
        for c in chunks:
            n += len(tok.encode(c, add_special_tokens=False).ids)
        return time.perf_counter() - t0, n

    cold, n_tokens = one_pass()
    warm = 0.0
    for _ in range(repeat):
        s, n_tokens = one_pass()
        warm += s
    warm /= repeat
    mb = total / 1e6
    return {
        "bytes": total, "chunks": len(chunks), "tokens": n_tokens,
        "cold_s": cold, "cold_mb_s": mb / cold, "warm_s": warm, "warm_mb_s": mb / warm,
        "warm_mtok_s": n_tokens / warm / 1e6,
    }


def turbine_bench(binary, tokenizer_json, config, corpus, repeat):
    cmd = [binary, tokenizer_json, config or "-", *corpus, "--repeat", str(repeat), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer-json", required=True, help="tokenizer.json (or .json.gz)")
    ap.add_argument("--config", help="tokenizer_config.json (default: next to the tokenizer)")
    ap.add_argument("--bench", required=True, help="turbine's tokenizer_bench binary")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("corpus", nargs="+")
    a = ap.parse_args()
    repeat = max(1, a.repeat)

    tmp = None
    tokenizer_json = a.tokenizer_json
    if tokenizer_json.endswith(".gz"):
        tmp = tempfile.mkdtemp(prefix="tokcmp-")
        tokenizer_json = os.path.join(tmp, "tokenizer.json")
        with gzip.open(a.tokenizer_json, "rb") as src, open(tokenizer_json, "wb") as dst:
            shutil.copyfileobj(src, dst)
    config = a.config
    if config is None:
        sibling = os.path.join(os.path.dirname(os.path.abspath(a.tokenizer_json)), "tokenizer_config.json")
        if os.path.exists(sibling):
            config = sibling
    try:
        hf = hf_bench(tokenizer_json, a.corpus, repeat)
        ours = turbine_bench(a.bench, tokenizer_json, config, a.corpus, repeat)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    import tokenizers
    result = {
        "tokenizer": a.tokenizer_json,
        "corpus": a.corpus,
        "bytes": hf["bytes"],
        "chunks": hf["chunks"],
        "repeat": repeat,
        "threads": 1,
        "hf_tokenizers_version": tokenizers.__version__,
        "hf": hf,
        "turbine": {k: ours[k] for k in ("tokens", "cold_s", "cold_mb_s", "warm_s", "warm_mb_s", "warm_mtok_s")},
        "ratio_warm": ours["warm_mb_s"] / hf["warm_mb_s"],
        "ratio_cold": ours["cold_mb_s"] / hf["cold_mb_s"],
        "tokens_match": ours["tokens"] == hf["tokens"] and ours["chunks"] == hf["chunks"],
    }
    print(json.dumps(result, indent=1))
    return 0 if result["tokens_match"] else 1


if __name__ == "__main__":
    sys.exit(main())
