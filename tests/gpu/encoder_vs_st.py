#!/usr/bin/env python3
"""Turbine's CUDA encoder path against sentence-transformers on the same GPU (issue 27).

For a BERT-base and a ModernBERT-base shape, random weights are made once with transformers
(seeded, saved with save_pretrained in BF16) and both sides load that folder:
  * sentence-transformers (PyTorch BF16, the model's default attention implementation, CLS pooling
    + Normalize): its encode() loop, replicated on token ids so that both sides see the same
    tokens (sort by length, batches of --st-batch-sizes, pad to the batch's longest, one
    device->host copy per batch), timed with CUDA synchronisation; the best batch size is the
    baseline;
  * Turbine: bench/encoder_throughput_bench (EncoderService over the CUDA encoder backend: padding-
    free batches under the token budget, BF16), all inputs as one call.
Workloads: 256 inputs of uniform 16-512 tokens (what a retrieval pipeline sends), fixed 128 and
fixed 512. Tokenization is excluded on both sides. Also a parity check: the first inputs' Turbine
embeddings against sentence-transformers' in F32 (cosine similarity).

Goals (issue 27): >= 2x sentence-transformers' embeddings/s at mixed lengths, >= 1x at fixed.

usage: encoder_vs_st.py --bench BUILD/encoder_throughput_bench [--out DIR] [--work DIR]
       [--shapes bert-base,modernbert-base] [--n 256] [--reps 5]
       [--turbine-configs "default;--max-batch-tokens 65536;--bias-epilogue"]
       [--profile "default;--bias-epilogue"] [--profile-workloads mixed] [--no-st]
Writes DIR/encoder_vs_st.json and DIR/encoder_vs_st.md; exit status 1 if a run or the parity
check failed (the speed goals are reported, not enforced).

--turbine-configs: Turbine's side once per configuration (';'-separated; each is extra
encoder_throughput_bench arguments, "default" for none), all against the same sentence-
transformers baseline; the first is the headline (speedup, parity dump), every one gets a row of
DIR/encoder_configs.md. --profile: for each --profile-workloads workload, one more bench run per
listed configuration with --profile-ops (events around every op; its throughput is not the one to
compare), the op table saved as DIR/encoder_profile_<shape>_<workload>_<i>.txt. --no-st: Turbine's
side only (no baseline, no parity), for quick profile-only runs.
"""
import argparse
import inspect
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "encoders")


def log(*a):
    print(*a, flush=True)


def make_model(shape, folder, seed):
    """Random weights in `shape`, saved as a Hugging Face folder with a fixture's tokenizer."""
    if os.path.exists(os.path.join(folder, "config.json")):
        return
    torch.manual_seed(seed)
    if shape == "bert-base":
        cfg = transformers.BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                                      num_attention_heads=12, intermediate_size=3072,
                                      max_position_embeddings=512, type_vocab_size=2,
                                      hidden_act="gelu", layer_norm_eps=1e-12, pad_token_id=0)
        model = transformers.BertModel(cfg)
        tok = "bert"
    else:
        params = inspect.signature(transformers.ModernBertConfig.__init__).parameters
        kw = dict(vocab_size=50368, hidden_size=768, intermediate_size=1152, num_hidden_layers=22,
                  num_attention_heads=12, max_position_embeddings=8192,
                  global_attn_every_n_layers=3, local_attention=128, norm_eps=1e-5,
                  norm_bias=False, attention_bias=False, mlp_bias=False,
                  hidden_activation="gelu", global_rope_theta=160000.0,
                  local_rope_theta=10000.0, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                  cls_token_id=0, sep_token_id=2)
        if "rope_parameters" in params:
            kw["rope_parameters"] = {
                "full_attention": {"rope_type": "default", "rope_theta": 160000.0},
                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}
        model = transformers.ModernBertModel(transformers.ModernBertConfig(**kw))
        tok = "modernbert"
    model = model.to(torch.bfloat16).eval()
    model.save_pretrained(folder, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        src = os.path.join(FIXTURES, tok, f)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(folder, f))


def make_inputs(kind, n, vocab, seed):
    rng = np.random.RandomState(seed)
    if kind == "mixed":
        lens = rng.randint(16, 513, size=n)
    else:
        lens = np.full(n, int(kind.split("_")[1]))
    return [[int(x) for x in rng.randint(5, min(vocab, 30000), size=int(l))] for l in lens]


def load_st(folder, dtype, max_len):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models
    tr = st_models.Transformer(folder, max_seq_length=max_len)
    pool = st_models.Pooling(tr.get_word_embedding_dimension(), pooling_mode="cls")
    st = SentenceTransformer(modules=[tr, pool, st_models.Normalize()], device="cuda")
    st = st.to(dtype).eval()
    impl = getattr(tr.auto_model.config, "_attn_implementation", "?")
    return st, impl


def st_encode(st, inputs, batch_size, pad_id, token_types):
    """sentence-transformers' encode() loop on token ids: sort by length (longest first), pad each
    batch to its longest input, forward, normalise (the Normalize module), copy to the host."""
    order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i]))
    out = [None] * len(inputs)
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            longest = max(len(inputs[i]) for i in idx)
            ids = torch.full((len(idx), longest), pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), longest), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, :len(inputs[i])] = torch.tensor(inputs[i])
                mask[r, :len(inputs[i])] = 1
            feats = {"input_ids": ids.to("cuda"), "attention_mask": mask.to("cuda")}
            if token_types:
                feats["token_type_ids"] = torch.zeros_like(feats["input_ids"])
            emb = st(feats)["sentence_embedding"].detach().float().cpu()
            for r, i in enumerate(idx):
                out[i] = emb[r]
    return out


def time_st(st, inputs, batch_size, pad_id, token_types, reps, warmup=2):
    ms = []
    for r in range(warmup + reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        st_encode(st, inputs, batch_size, pad_id, token_types)
        torch.cuda.synchronize()
        if r >= warmup:
            ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    return ms[len(ms) // 2], ms


def run_turbine(bench, folder, inputs_file, out_json, dump, reps, extra, stdout_file=None):
    cmd = [bench, "--model", folder, "--inputs", inputs_file, "--device", "cuda", "--dtype", "bf16",
           "--reps", str(reps), "--json", out_json, "--dump", dump, "--dump-n", "16"] + extra
    log("$", " ".join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    log(p.stdout.strip())
    if stdout_file:
        with open(stdout_file, "w") as f:
            f.write("$ " + " ".join(cmd) + "\n" + p.stdout)
    if p.returncode != 0:
        log(p.stderr[-4000:])
        return None
    with open(out_json) as f:
        return json.load(f)


def parse_configs(spec):
    """'default;--max-batch-tokens 65536' -> [('default', []), ('--max-batch-tokens 65536', [...])]."""
    out = []
    for c in spec.split(";"):
        c = c.strip()
        if not c:
            continue
        out.append((c, [] if c == "default" else c.split()))
    return out or [("default", [])]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--out", default="/tmp/turbine-gpu/encoder")
    ap.add_argument("--work", default="/tmp/turbine-encoders")
    ap.add_argument("--shapes", default="bert-base,modernbert-base")
    ap.add_argument("--workloads", default="mixed,fixed_128,fixed_512")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--st-batch-sizes", default="32,128")
    ap.add_argument("--turbine-configs", default="default")
    ap.add_argument("--profile", default="", help="configurations to profile (';'-separated)")
    ap.add_argument("--profile-workloads", default="mixed")
    ap.add_argument("--no-st", action="store_true")
    args = ap.parse_args()
    configs = parse_configs(args.turbine_configs)
    profile_configs = parse_configs(args.profile) if args.profile else []
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    import sentence_transformers
    log(f"GPU {torch.cuda.get_device_name(0)}; torch {torch.__version__}, transformers "
        f"{transformers.__version__}, sentence-transformers {sentence_transformers.__version__}")
    results, failed = [], []
    for si, shape in enumerate(args.shapes.split(",")):
        folder = os.path.join(args.work, shape)
        t0 = time.perf_counter()
        make_model(shape, folder, seed=100 + si)
        log(f"== {shape}: weights in {folder} ({time.perf_counter() - t0:.1f} s)")
        with open(os.path.join(folder, "config.json")) as f:
            cfg = json.load(f)
        vocab, bert = cfg["vocab_size"], shape.startswith("bert")
        pad_id = cfg.get("pad_token_id") or 0
        max_len = min(8192, cfg["max_position_embeddings"])
        st, impl = (None, "-") if args.no_st else load_st(folder, torch.bfloat16, max_len)
        log(f"sentence-transformers attention implementation: {impl}")
        for wi, kind in enumerate(args.workloads.split(",")):
            inputs = make_inputs(kind, args.n, vocab, seed=1000 * si + wi)
            tokens = sum(len(x) for x in inputs)
            inputs_file = os.path.join(args.work, f"{shape}_{kind}.json")
            with open(inputs_file, "w") as f:
                json.dump(inputs, f)
            row = {"shape": shape, "workload": kind, "inputs": len(inputs), "tokens": tokens,
                   "st_attention": impl, "st": {}}
            for pi, (label, extra) in enumerate(profile_configs):
                if kind not in args.profile_workloads.split(","):
                    break
                txt = os.path.join(args.out, f"encoder_profile_{shape}_{kind}_{pi}.txt")
                log(f"== profile {shape} {kind} [{label}] -> {txt}")
                pr = run_turbine(args.bench, folder, inputs_file,
                                 os.path.join(args.work, f"{shape}_{kind}_profile_{pi}.json"),
                                 os.path.join(args.work, f"{shape}_{kind}_profile_dump.json"),
                                 args.reps, extra + ["--profile-ops"], stdout_file=txt)
                if pr is None:
                    failed.append(f"{shape} {kind}: profile run [{label}] failed")
                else:
                    row.setdefault("profiles", {})[label] = pr.get("profile", [])
            if args.no_st:
                row["turbine_configs"] = {}
                for ci, (label, extra) in enumerate(configs):
                    tb = run_turbine(args.bench, folder, inputs_file,
                                     os.path.join(args.work, f"{shape}_{kind}_turbine_{ci}.json"),
                                     os.path.join(args.work, f"{shape}_{kind}_dump_{ci}.json"),
                                     args.reps, extra)
                    if tb is None:
                        failed.append(f"{shape} {kind} [{label}]: turbine bench failed")
                        continue
                    row["turbine_configs"][label] = tb
                results.append(row)
                continue
            for bs in [int(x) for x in args.st_batch_sizes.split(",")]:
                med, ms = time_st(st, inputs, bs, pad_id, bert, args.reps)
                row["st"][str(bs)] = {"median_ms": med, "reps_ms": ms,
                                      "embeddings_per_s": len(inputs) / (med / 1000)}
                log(f"{shape} {kind}: sentence-transformers batch {bs}: {med:.1f} ms, "
                    f"{len(inputs) / (med / 1000):.0f} embeddings/s")
            best_bs = max(row["st"], key=lambda k: row["st"][k]["embeddings_per_s"])
            row["st_best_batch_size"] = int(best_bs)
            st_eps = row["st"][best_bs]["embeddings_per_s"]
            dump = os.path.join(args.work, f"{shape}_{kind}_dump.json")
            row["turbine_configs"] = {}
            tb = None
            for ci, (label, extra) in enumerate(configs):
                ctb = run_turbine(args.bench, folder, inputs_file,
                                  os.path.join(args.work, f"{shape}_{kind}_turbine_{ci}.json"),
                                  dump if ci == 0 else
                                  os.path.join(args.work, f"{shape}_{kind}_dump_{ci}.json"),
                                  args.reps, extra)
                if ctb is None:
                    if ci > 0:
                        failed.append(f"{shape} {kind} [{label}]: turbine bench failed")
                    continue
                ctb["speedup"] = ctb["embeddings_per_s"] / st_eps
                row["turbine_configs"][label] = ctb
                log(f"{shape} {kind} [{label}]: turbine {ctb['embeddings_per_s']:.0f} embeddings/s "
                    f"= {ctb['speedup']:.2f}x sentence-transformers "
                    f"({ctb.get('batches_per_call', 0):.1f} batches per call)")
                if ci == 0:
                    tb = ctb
            if tb is None:
                failed.append(f"{shape} {kind}: turbine bench failed")
                results.append(row)
                continue
            row["turbine"] = tb
            row["speedup"] = tb["embeddings_per_s"] / st_eps
            goal = 2.0 if kind == "mixed" else 1.0
            row["goal"] = goal
            log(f"{shape} {kind}: turbine {tb['embeddings_per_s']:.0f} embeddings/s = "
                f"{row['speedup']:.2f}x sentence-transformers (goal {goal:.0f}x)")
            # Parity: Turbine BF16 vs sentence-transformers F32 on the first inputs.
            with open(dump) as f:
                got = torch.tensor(json.load(f))
            if kind == args.workloads.split(",")[0]:
                st32, _ = load_st(folder, torch.float32, max_len)
                ref = torch.stack(st_encode(st32, inputs[:len(got)], 8, pad_id, bert))
                del st32
                torch.cuda.empty_cache()
                cos = F.cosine_similarity(got, ref, dim=1)
                row["parity_min_cosine"] = float(cos.min())
                log(f"{shape}: parity vs sentence-transformers F32: min cosine {cos.min():.5f}")
                if float(cos.min()) < 0.99:
                    failed.append(f"{shape}: parity min cosine {float(cos.min()):.4f} < 0.99")
                # Every other configuration's embeddings against the same reference.
                for ci, (label, _) in enumerate(configs):
                    if ci == 0 or label not in row["turbine_configs"]:
                        continue
                    with open(os.path.join(args.work, f"{shape}_{kind}_dump_{ci}.json")) as f:
                        c_got = torch.tensor(json.load(f))
                    c_cos = float(F.cosine_similarity(c_got, ref, dim=1).min())
                    row["turbine_configs"][label]["parity_min_cosine"] = c_cos
                    log(f"{shape} [{label}]: parity min cosine {c_cos:.5f}")
                    if c_cos < 0.99:
                        failed.append(f"{shape} [{label}]: parity min cosine {c_cos:.4f} < 0.99")
            results.append(row)
        del st
        torch.cuda.empty_cache()

    # One row per (shape, workload, Turbine configuration): the A/B of the switches.
    clines = ["| shape | workload | Turbine configuration | emb/s | tokens/s | batches/call | "
              "vs ST best | vs first config |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        st_b = r.get("st_best_batch_size")
        st_eps = r["st"][str(st_b)]["embeddings_per_s"] if st_b else float("nan")
        first = None
        for label, tb in r.get("turbine_configs", {}).items():
            first = first or tb["embeddings_per_s"]
            clines.append(f"| {r['shape']} | {r['workload']} | {label} | "
                          f"{tb['embeddings_per_s']:.0f} | {tb['tokens_per_s']:.0f} | "
                          f"{tb.get('batches_per_call', float('nan')):.1f} | "
                          f"{tb['embeddings_per_s'] / st_eps:.2f}x | "
                          f"{tb['embeddings_per_s'] / first:.3f} |")
    ctable = "\n".join(clines)
    with open(os.path.join(args.out, "encoder_configs.md"), "w") as f:
        f.write(ctable + "\n")
    log(ctable)

    with open(os.path.join(args.out, "encoder_vs_st.json"), "w") as f:
        json.dump({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
                   "transformers": transformers.__version__,
                   "sentence_transformers": sentence_transformers.__version__,
                   "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "results": results, "failed": failed}, f, indent=1)
    lines = ["| shape | workload | tokens | ST best (batch) emb/s | Turbine emb/s | speedup | goal |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        st_b = r.get("st_best_batch_size")
        st_eps = r["st"][str(st_b)]["embeddings_per_s"] if st_b else float("nan")
        tb = r.get("turbine", {}).get("embeddings_per_s", float("nan"))
        lines.append(f"| {r['shape']} | {r['workload']} | {r['tokens']} | {st_eps:.0f} ({st_b}) | "
                     f"{tb:.0f} | {r.get('speedup', float('nan')):.2f}x | {r.get('goal', 0):.0f}x |")
    table = "\n".join(lines)
    with open(os.path.join(args.out, "encoder_vs_st.md"), "w") as f:
        f.write(table + "\n")
    log(table)
    for f in failed:
        log("FAILED:", f)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
