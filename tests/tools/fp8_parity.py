#!/usr/bin/env python3
"""Logits parity of Turbine's FP8 path against a PyTorch reference (issue 28, GPU machine).

A random-weight compressed-tensors FP8-dynamic checkpoint is written by `turbine_generate
--gen-model --quantization fp8` (E4M3 weights with one scale per output channel, inputs quantized
per token). The reference is written here from the format alone, in float64 on the CPU: each
linear layer's weight is dequantized as stored · weight_scale[row], its input x is quantized per
token as the format says (s = max(|x|max / 448, 1 / (448 · 512)); x -> e4m3(clamp(x / s, ±448)) · s,
round to nearest even), then the Llama/Qwen2/Qwen3 forward pass
(RMSNorm, RoPE halves, GQA causal attention, SwiGLU). With --kv-cache-dtype fp8 the reference
also stores K and V as e4m3(k / 1) (the checkpoint has no kv scales) before attention.

Turbine's logits come from `turbine_generate --dump-logits` (the last TAIL + 1 positions of every
prompt: one batched prefill chunk per prompt, then TAIL batched decode steps) for each case below;
each is compared by relative L2 error and top-1 agreement against the reference.

Usage: fp8_parity.py --bin build-cuda/turbine_generate [--device cuda] [--archs llama,qwen2,qwen3]
                     [--work /tmp/turbine-fp8-parity] [--out DIR]
Exit status 0 when every case is within its tolerance.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import time

import numpy as np

try:  # torch's float8_e4m3fn cast is the rounding reference when present (GPU machine)
    import torch
except ImportError:
    torch = None

TAIL = 4
# Relative L2 error of the logits (the worst prompt) and top-1 agreement. The reference and Turbine
# quantize the same activations, but an element that falls on (or within rounding of) the midpoint
# of two E4M3 values can round either way depending on float32 vs float64, rsqrtf or summation
# order; random BF16 embeddings make exact midpoints common in the first layer, and one such flip
# moves later logits by ~3% on these tiny random models (measured: Turbine's CPU backend, float32,
# against this reference: 3.4e-2 and 3.9e-2 with and without the FP8 KV cache, top-1 1.0).
# BF16 activations also round between kernels.
TOL = {"f32": 1e-1, "bf16": 1.5e-1}
MIN_TOP1 = 0.85

E4M3_MAX = 448.0
MIN_SCALE = 1.0 / (448.0 * 512.0)


def e4m3_decode_table():
    """The 256 values of float8_e4m3fn (0x7f / 0xff NaN), from the format's definition."""
    t = np.zeros(256)
    for c in range(256):
        e, m = (c >> 3) & 0xF, c & 7
        if e == 0xF and m == 7:
            v = float("nan")
        elif e == 0:
            v = m * 2.0 ** -9
        else:
            v = (1 + m / 8) * 2.0 ** (e - 7)
        t[c] = -v if c & 0x80 else v
    return t


E4M3 = e4m3_decode_table()
POS = E4M3[:0x7F]  # codes 0..126: the non-negative finite values, ascending


def e4m3_numpy(x):
    """Round to E4M3, nearest even (ties to the even code), saturating at ±448."""
    a = np.minimum(np.abs(x), E4M3_MAX)
    i = np.clip(np.searchsorted(POS, a), 1, len(POS) - 1)
    lo, hi = POS[i - 1], POS[i]
    up = (a - lo > hi - a) | ((a - lo == hi - a) & (i % 2 == 0))
    return np.sign(x) * np.where(up, hi, lo)


def e4m3(x):
    """x rounded to E4M3 and back (float64). torch's cast when available, else the table."""
    if torch is None:
        return e4m3_numpy(x)
    t = torch.from_numpy(np.clip(x, -E4M3_MAX, E4M3_MAX).astype(np.float32))
    return t.to(torch.float8_e4m3fn).to(torch.float64).numpy()


def check_rounding():
    """The table rounding must agree with torch's where both exist (ties included)."""
    if torch is None:
        return
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=20000) * 10.0 ** rng.uniform(-4, 3, size=20000),
                        (POS[1:] + POS[:-1]) / 2, -(POS[1:] + POS[:-1]) / 2, [500.0, -1e9]])
    x = x.astype(np.float32).astype(np.float64)
    bad = np.flatnonzero(e4m3_numpy(x) != e4m3(x))
    if len(bad):
        raise SystemExit(f"E4M3 rounding: table and torch differ at {x[bad[:5]]}")


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw, dt = data[b:e], info["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif dt == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
            a = a.astype(np.float64)
        elif dt == "F8_E4M3":
            a = E4M3[np.frombuffer(raw, dtype=np.uint8)]
        else:
            raise SystemExit(f"{path}: tensor {name} has dtype {dt}")
        out[name] = (a.reshape(info["shape"]) if info["shape"] else a.reshape(()), dt)
    return out


def load_checkpoint(folder):
    tensors = {}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            tensors.update(read_safetensors(os.path.join(folder, f)))
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    return cfg, tensors


def quantize_per_token(x):
    s = np.maximum(np.abs(x).max(axis=-1, keepdims=True) / E4M3_MAX, MIN_SCALE)
    # f32 division, as the kernels and the CPU backend divide in f32
    return e4m3((x.astype(np.float32) / s.astype(np.float32)).astype(np.float64)) * s


class Linear:
    """A linear layer as the checkpoint stores it: FP8 with scales, or plain."""

    def __init__(self, tensors, prefix):
        w, dt = tensors[prefix + ".weight"]
        self.fp8 = dt == "F8_E4M3"
        self.w = w
        if self.fp8:
            scale = tensors[prefix + ".weight_scale"][0]
            self.w = w * (scale.reshape(-1, 1) if scale.size > 1 else scale.reshape(1, 1))
        b = tensors.get(prefix + ".bias")
        self.b = None if b is None else b[0]

    def __call__(self, x):
        if self.fp8:
            x = quantize_per_token(x)
        y = x @ self.w.T
        return y if self.b is None else y + self.b


def rope_inv_freq(cfg, hd):
    theta = float(cfg.get("rope_theta", 10000.0))
    inv = 1.0 / theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    rs = cfg.get("rope_scaling") or {}
    if rs.get("rope_type") == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        smooth = (old / wavelen - lo) / (hi - lo)
        scaled = np.where(wavelen > old / lo, inv / factor, inv)
        mid = (wavelen <= old / lo) & (wavelen >= old / hi)
        inv = np.where(mid, (1 - smooth) * inv / factor + smooth * inv, scaled)
    return inv


def rmsnorm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def apply_rope(x, pos, inv):  # x [T, H, hd], halves layout
    ang = pos[:, None].astype(np.float64) * inv[None, :]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    h = x.shape[-1] // 2
    a, b = x[..., :h], x[..., h:]
    return np.concatenate([a * c - b * s, a * s + b * c], axis=-1)


def forward(cfg, tensors, ids, fp8_kv):
    """Logits [T, vocab] of one prompt (float64)."""
    arch = cfg["model_type"]
    dim, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or dim // nh
    eps = cfg["rms_norm_eps"]
    t = lambda name: tensors[name][0]
    x = t("model.embed_tokens.weight")[np.array(ids)]
    T = len(ids)
    pos = np.arange(T)
    inv = rope_inv_freq(cfg, hd)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rmsnorm(x, t(p + "input_layernorm.weight"), eps)
        q = Linear(tensors, p + "self_attn.q_proj")(h).reshape(T, nh, hd)
        k = Linear(tensors, p + "self_attn.k_proj")(h).reshape(T, nkv, hd)
        v = Linear(tensors, p + "self_attn.v_proj")(h).reshape(T, nkv, hd)
        if arch == "qwen3":
            q = rmsnorm(q, t(p + "self_attn.q_norm.weight"), eps)
            k = rmsnorm(k, t(p + "self_attn.k_norm.weight"), eps)
        q, k = apply_rope(q, pos, inv), apply_rope(k, pos, inv)
        if fp8_kv:  # stored = e4m3(k / 1): the checkpoint has no kv scales
            k, v = e4m3(k), e4m3(v)
        rep = nh // nkv
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        att = np.einsum("thd,shd->hts", q, k) / math.sqrt(hd) + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        o = np.einsum("hts,shd->thd", att, v).reshape(T, nh * hd)
        x = x + Linear(tensors, p + "self_attn.o_proj")(o)
        h = rmsnorm(x, t(p + "post_attention_layernorm.weight"), eps)
        g = Linear(tensors, p + "mlp.gate_proj")(h)
        u = Linear(tensors, p + "mlp.up_proj")(h)
        x = x + Linear(tensors, p + "mlp.down_proj")(g / (1 + np.exp(-g)) * u)
    x = rmsnorm(x, t("model.norm.weight"), eps)
    head = tensors.get("lm_head.weight", tensors["model.embed_tokens.weight"])[0]
    return x @ head.T


def run(cmd, log):
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    log.write("$ " + " ".join(cmd) + f"\n[{time.time() - t0:.2f} s, rc {r.returncode}]\n" +
              r.stderr[-3000:] + "\n")
    log.flush()
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({r.returncode}): {r.stderr[-1000:]}")
    return r


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="turbine_generate")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--archs", default="llama,qwen2,qwen3")
    ap.add_argument("--shape", default="tiny")
    ap.add_argument("--work", default="/tmp/turbine-fp8-parity")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    check_rounding()
    log = open(os.path.join(args.out, "fp8_parity_cmds.log"), "w")
    rng = np.random.default_rng(28)
    ok, results = True, {}
    cases = [("f32", []), ("bf16", []), ("f32", ["--kv-cache-dtype", "fp8"]),
             ("bf16", ["--kv-cache-dtype", "fp8"])]
    if args.device == "cuda":  # the dequantize-at-upload path beside the E4M3 one
        cases.append(("bf16", ["--no-fp8-weights"]))
    print("E4M3 rounding: " + (f"torch {torch.__version__} (the table agrees)" if torch else
                               "the format's table (no torch here)"), flush=True)
    for i, arch in enumerate(args.archs.split(",")):
        folder = os.path.join(args.work, f"{arch}-{args.shape}-fp8")
        if not os.path.exists(os.path.join(folder, "config.json")):
            run([args.bin, "--gen-model", folder, "--arch", arch, "--shape", args.shape,
                 "--dtype", "bf16", "--seed", str(40 + i), "--quantization", "fp8"], log)
        cfg, tensors = load_checkpoint(folder)
        vocab = cfg["vocab_size"]
        prompts = [list(map(int, rng.integers(3, vocab, size=n))) for n in (7, 23, 60)]
        ref = {kv: np.stack([forward(cfg, tensors, p, kv)[len(p) - TAIL - 1:] for p in prompts])
               for kv in (False, True)}
        pids = sum((["--prompt-ids", ",".join(map(str, p))] for p in prompts), [])
        for dtype, extra in cases:
            fp8_kv = "--kv-cache-dtype" in extra
            npy = os.path.join(args.work, f"{arch}_{dtype}_{len(results)}.npy")
            run([args.bin, "--model", folder, "--device", args.device, "--dtype", dtype,
                 "--max-context", "512", "--max-num-seqs", "4", "--dump-logits", npy,
                 "--logits-tail", str(TAIL)] + extra + pids, log)
            got, want = np.load(npy), ref[fp8_kv]
            err = max(rel_l2(got[s], want[s]) for s in range(len(prompts)))
            top1 = float(np.mean(got.argmax(-1) == want.argmax(-1)))
            key = f"{arch} {args.device}/{dtype} {' '.join(extra)}".strip()
            passed = err < TOL[dtype] and top1 >= MIN_TOP1
            ok = ok and passed
            results[key] = {"logits_rel_l2": err, "top1_agreement": top1, "tolerance": TOL[dtype],
                            "pass": passed}
            print(f"{key:48s} logits rel L2 {err:.2e} (tol {TOL[dtype]:g}), top-1 {top1:.3f} "
                  f"(min {MIN_TOP1}) -> "
                  f"{'PASS' if passed else 'FAIL'}", flush=True)
    with open(os.path.join(args.out, "fp8_parity.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("FP8 PARITY", "PASS" if ok else "FAIL", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
