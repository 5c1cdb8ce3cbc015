#!/usr/bin/env python3
"""Writes a small random-weight Hugging Face Llama 3 style folder (numpy only): config.json with GQA, tied
embeddings and Llama 3 rope scaling, model.safetensors (BF16 or F32), and a copy of a tokenizer.json whose
vocabulary sets the embedding size. For checking the Llama 3 path (byte-level BPE tokenizer, rope scaling,
tied output) through `shoal convert` and llama.cpp without a real checkpoint.

usage: make_random_hf.py TOKENIZER_JSON OUTDIR [--dtype F32|BF16] [--seed N]
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_hf import write_safetensors  # noqa: E402


def main():
    args = sys.argv[1:]
    dtype, seed = "F32", 1
    if "--dtype" in args:
        i = args.index("--dtype")
        dtype = args[i + 1]
        del args[i:i + 2]
    if "--seed" in args:
        i = args.index("--seed")
        seed = int(args[i + 1])
        del args[i:i + 2]
    tok_json, out = args
    with open(tok_json, encoding="utf-8") as f:
        tj = json.load(f)
    vocab = len(tj["model"]["vocab"]) + len(tj.get("added_tokens", []))
    dim, layers, heads, kv_heads, hidden, hd = 64, 2, 4, 2, 128, 16
    rng = np.random.default_rng(seed)

    def w(*shape, sd=0.3):
        return rng.standard_normal(shape).astype(np.float32) * sd

    tensors = [("model.embed_tokens.weight", w(vocab, dim, sd=0.05))]
    for l in range(layers):
        p = f"model.layers.{l}."
        tensors += [(p + "input_layernorm.weight", 1 + w(dim, sd=0.1)),
                    (p + "self_attn.q_proj.weight", w(heads * hd, dim, sd=0.3)),
                    (p + "self_attn.k_proj.weight", w(kv_heads * hd, dim, sd=0.3)),
                    (p + "self_attn.v_proj.weight", w(kv_heads * hd, dim)),
                    (p + "self_attn.o_proj.weight", w(dim, heads * hd)),
                    (p + "post_attention_layernorm.weight", 1 + w(dim, sd=0.1)),
                    (p + "mlp.gate_proj.weight", w(hidden, dim)),
                    (p + "mlp.up_proj.weight", w(hidden, dim)),
                    (p + "mlp.down_proj.weight", w(dim, hidden))]
    tensors.append(("model.norm.weight", 1 + w(dim, sd=0.1)))
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "model.safetensors"), tensors, dtype)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": dim,
              "intermediate_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
              "num_key_value_heads": kv_heads, "head_dim": hd, "vocab_size": vocab,
              "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
              "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
              "tie_word_embeddings": True, "hidden_act": "silu", "bos_token_id": 128000,
              "eos_token_id": 128001}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    shutil.copy(tok_json, os.path.join(out, "tokenizer.json"))


if __name__ == "__main__":
    main()
