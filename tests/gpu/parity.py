#!/usr/bin/env python3
"""End-to-end parity of Turbine's CUDA backend against PyTorch + transformers (GPU machine).

For each architecture (Llama-3 with GQA and llama3 RoPE scaling, Qwen2 with q/k/v biases,
Qwen3 with q/k norms) a small random-initialised model is created from a config and saved with
`save_pretrained` in float32. Then:
  * greedy: transformers (float32, eager attention, on the CPU) generates 64 tokens for a batch
    of prompts; `turbine_generate --device cuda --dtype f32` (through engine::Engine, all
    prompts batched) must produce the identical 64 tokens for every prompt. The CPU backend is
    checked the same way.
  * logits: the last K+1 positions of every prompt (Turbine: one batched prefill chunk per
    prompt, then K batched decode steps) against transformers' full-sequence logits:
    F32 to a relative L2 error < 1e-4, BF16 (and F16) to < BF16_TOL (stated below).

Usage: parity.py --bin build/turbine_generate [--work /tmp/turbine-parity] [--out DIR]
Exit status 0 when every check passes.
"""
import argparse
import inspect
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import transformers

F32_TOL = 1e-4
BF16_TOL = 3e-2  # relative L2 error of logits; BF16 keeps 8 mantissa bits
F16_TOL = 1e-2
N_STEPS = 64
TAIL = 4


def make_config(arch):
    common = dict(vocab_size=1024, hidden_size=256, intermediate_size=512, num_hidden_layers=3,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=64,
                  max_position_embeddings=4096, rms_norm_eps=1e-5, initializer_range=0.08,
                  bos_token_id=1, eos_token_id=2)
    if arch == "llama":
        cls = transformers.LlamaConfig
        rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 256}
        theta = 500000.0
        common.update(tie_word_embeddings=False)
    elif arch == "qwen2":
        cls = transformers.Qwen2Config
        rope, theta = None, 1000000.0
        common.update(tie_word_embeddings=True, use_sliding_window=False)
    else:
        cls = transformers.Qwen3Config
        rope, theta = None, 1000000.0
        common.update(tie_word_embeddings=True, use_sliding_window=False)
    params = inspect.signature(cls.__init__).parameters
    if "rope_parameters" in params:
        rp = {"rope_type": "default", "rope_theta": theta}
        if rope:
            rp.update(rope)
            rp["rope_theta"] = theta
        common["rope_parameters"] = rp
    else:
        common["rope_theta"] = theta
        if rope:
            common["rope_scaling"] = rope
    return cls(**common)


def make_model(arch, folder, seed):
    torch.manual_seed(seed)
    cfg = make_config(arch)
    cfg._attn_implementation = "eager"
    model = transformers.AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.float32)
    # HF initialises norms to 1 and biases to 0: perturb them so those paths are exercised.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.empty_like(p).uniform_(-0.2, 0.2))
            elif name.endswith(".bias"):
                p.copy_(torch.empty_like(p).uniform_(-0.1, 0.1))
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    return model


def hf_greedy(model, prompt, n):
    with torch.no_grad():
        out = model(torch.tensor([prompt]), use_cache=True)
        past = out.past_key_values
        tok = int(torch.argmax(out.logits[0, -1]))
        toks = [tok]
        for _ in range(n - 1):
            out = model(torch.tensor([[tok]]), past_key_values=past, use_cache=True)
            past = out.past_key_values
            tok = int(torch.argmax(out.logits[0, -1]))
            toks.append(tok)
    return toks


def hf_tail_logits(model, prompt, k):
    with torch.no_grad():
        logits = model(torch.tensor([prompt])).logits[0].float().numpy()
    return logits[len(prompt) - k - 1:]


def run_turbine(binary, args, log):
    cmd = [binary] + args
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    log.write("$ " + " ".join(cmd) + f"\n[{time.time() - t0:.2f} s, rc {r.returncode}]\n" +
              r.stderr[-2000:] + "\n")
    if r.returncode != 0:
        raise RuntimeError(f"turbine_generate failed ({r.returncode}): {r.stderr[-1000:]}")
    return r.stdout


def parse_seqs(stdout):
    seqs = {}
    for line in stdout.splitlines():
        if line.startswith("seq "):
            head, _, rest = line.partition(":")
            seqs[int(head.split()[1])] = [int(x) for x in rest.split()]
    return [seqs[i] for i in sorted(seqs)]


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", default="/tmp/turbine-parity")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--archs", default="llama,qwen2,qwen3")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    log = open(os.path.join(args.out, "parity_cmds.log"), "w")
    rng = np.random.default_rng(1234)
    prompts = [list(map(int, rng.integers(3, 1024, size=n))) for n in (6, 17, 40, 77)]
    results, ok = {}, True
    print(f"transformers {transformers.__version__}, torch {torch.__version__}", flush=True)
    for i, arch in enumerate(args.archs.split(",")):
        folder = os.path.join(args.work, arch)
        model = make_model(arch, folder, seed=100 + i)
        ref_tokens = [hf_greedy(model, p, N_STEPS) for p in prompts]
        ref_logits = np.stack([hf_tail_logits(model, p, TAIL) for p in prompts])
        r = {}
        pids = sum((["--prompt-ids", ",".join(map(str, p))] for p in prompts), [])
        for device, dtype in (("cuda", "f32"), ("cpu", "f32"), ("cuda", "bf16")):
            base = ["--model", folder, "--device", device, "--dtype", dtype, "--max-context",
                    "1024", "--max-num-seqs", "8"] + pids
            got = parse_seqs(run_turbine(args.bin, base + ["--max-tokens", str(N_STEPS)], log))
            same = [g == t for g, t in zip(got, ref_tokens)]
            first_diff = [next((j for j, (a, b) in enumerate(zip(g, t)) if a != b), None)
                          for g, t in zip(got, ref_tokens)]
            npy = os.path.join(args.work, f"{arch}_{device}_{dtype}.npy")
            run_turbine(args.bin, base + ["--dump-logits", npy, "--logits-tail", str(TAIL)], log)
            logits = np.load(npy)
            errs = [rel_l2(logits[s], ref_logits[s]) for s in range(len(prompts))]
            top1 = float(np.mean(logits.argmax(-1) == ref_logits.argmax(-1)))
            tol = F32_TOL if dtype == "f32" else BF16_TOL
            key = f"{device}/{dtype}"
            passed = max(errs) < tol and (dtype != "f32" or all(same))
            r[key] = {"greedy_identical": same, "first_divergence": first_diff,
                      "logits_rel_l2": errs, "logits_max_abs": float(np.abs(logits - ref_logits).max()),
                      "top1_agreement": top1, "tolerance": tol, "pass": passed}
            ok = ok and passed
            print(f"{arch:6s} {key:10s} greedy identical {sum(same)}/{len(same)} "
                  f"(first divergence {first_diff}); logits rel L2 max {max(errs):.2e} "
                  f"(tol {tol:g}), max abs {r[key]['logits_max_abs']:.2e}, top-1 {top1:.3f} -> "
                  f"{'PASS' if passed else 'FAIL'}", flush=True)
        results[arch] = r
    with open(os.path.join(args.out, "parity.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("PARITY", "PASS" if ok else "FAIL", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
