#!/usr/bin/env python3
"""Builds tiny random Llama (llama3 rope scaling), Qwen2 and Qwen3 checkpoints with transformers
and records their greedy continuations, for tests/unit/engine/cpu_hf_reference_test.cpp.

usage: make_hf_reference.py OUT_DIR      (then: TURBINE_HF_REFERENCE_DIR=OUT_DIR engine_test)
Each OUT_DIR/<name>/ gets config.json + model.safetensors (float32) and expected.json:
  {"prompt": [...], "greedy": [16 ids], "logits": [[vocab floats] per greedy step]}
where logits[k] are the last-position logits that chose greedy[k].
"""
import json
import os
import sys

import torch
from transformers import (LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM)

PROMPT = [1, 17, 42, 99, 3, 250, 7, 128]
STEPS = 16
COMMON = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, vocab_size=256, max_position_embeddings=256, rms_norm_eps=1e-5,
              initializer_range=0.2, bos_token_id=1, eos_token_id=2)


def build(name):
    if name == "llama3":
        cfg = LlamaConfig(**COMMON, rope_theta=10000.0, tie_word_embeddings=False,
                          rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
        return LlamaForCausalLM(cfg)
    if name == "qwen2":
        cfg = Qwen2Config(**COMMON, rope_theta=1000000.0, tie_word_embeddings=True, use_sliding_window=False)
        return Qwen2ForCausalLM(cfg)
    if name == "qwen3":
        cfg = Qwen3Config(**COMMON, head_dim=32, rope_theta=1000000.0, tie_word_embeddings=False,
                          use_sliding_window=False, attention_bias=False)
        return Qwen3ForCausalLM(cfg)
    raise ValueError(name)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "hf_reference"
    for i, name in enumerate(["llama3", "qwen2", "qwen3"]):
        torch.manual_seed(1234 + i)
        model = build(name).float().eval()
        # Default init leaves norms at 1 and biases at 0, which would hide bugs in those paths.
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if "norm" in pname:
                    p.copy_(1.0 + 0.2 * torch.randn_like(p))
                elif pname.endswith("bias"):
                    p.copy_(0.2 * torch.randn_like(p))
        model.config._attn_implementation = "eager"
        ids = list(PROMPT)
        greedy, logits = [], []
        with torch.no_grad():
            for _ in range(STEPS):
                last = model(torch.tensor([ids])).logits[0, -1].float()
                nxt = int(torch.argmax(last))
                logits.append([float(x) for x in last])
                greedy.append(nxt)
                ids.append(nxt)
        d = os.path.join(out, name)
        model.save_pretrained(d, safe_serialization=True)
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump({"prompt": PROMPT, "greedy": greedy, "logits": logits}, f)
        print(name, greedy)


if __name__ == "__main__":
    main()
