#!/usr/bin/env python3
"""Writes a llama2.c .bin checkpoint as a Hugging Face Llama folder (config.json + safetensors), numpy only.

The safetensors format is written by hand here (u64 header length, JSON header, raw little-endian data), on
purpose independently of Shoal's reader. Q and K rows are put into HF's rotate-halves order, the inverse of
what Shoal's loader undoes: within each head, HF row i is llama2.c row 2i, HF row i + head_dim/2 is row 2i+1.

usage: make_hf.py MODEL.bin OUTDIR [--dtype F32|F16|BF16] [--shards N]
"""
import json
import os
import struct
import sys

import numpy as np


def read_bin(path):
    with open(path, "rb") as f:
        data = f.read()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack("<7i", data[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    w = np.frombuffer(data, dtype="<f4", offset=28)
    hd = dim // heads
    kv_dim = kv_heads * hd
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        a = w[off:off + n].reshape(shape)
        off += n
        return a

    t = {"emb": take(vocab, dim), "attn_norm": take(layers, dim), "wq": take(layers, dim, dim),
         "wk": take(layers, kv_dim, dim), "wv": take(layers, kv_dim, dim), "wo": take(layers, dim, dim),
         "ffn_norm": take(layers, dim), "w1": take(layers, hidden, dim), "w2": take(layers, dim, hidden),
         "w3": take(layers, hidden, dim), "norm": take(dim)}
    off += seq_len * hd  # legacy freq_cis tables
    if not shared:
        t["out"] = take(vocab, dim)
    cfg = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, vocab=vocab,
               seq_len=seq_len, shared=shared)
    return cfg, t


def to_hf_rows(w, n_heads):
    """llama2.c interleaved-pair rows -> HF rotate-halves rows."""
    rows, cols = w.shape
    hd = rows // n_heads
    return w.reshape(n_heads, hd // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def encode(a, dtype):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if dtype == "F32":
        return a.astype("<f4").tobytes()
    if dtype == "F16":
        return a.astype("<f2").tobytes()
    u = a.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")  # round to nearest even
    return r.tobytes()


def write_safetensors(path, tensors, dtype):
    header, blobs, off = {}, [], 0
    for name, a in tensors:
        b = encode(a, dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    args = sys.argv[1:]
    dtype, shards = "F32", 1
    if "--dtype" in args:
        i = args.index("--dtype")
        dtype = args[i + 1]
        del args[i:i + 2]
    if "--shards" in args:
        i = args.index("--shards")
        shards = int(args[i + 1])
        del args[i:i + 2]
    src, out = args
    cfg, t = read_bin(src)
    os.makedirs(out, exist_ok=True)
    tensors = [("model.embed_tokens.weight", t["emb"])]
    for l in range(cfg["layers"]):
        p = f"model.layers.{l}."
        tensors += [(p + "input_layernorm.weight", t["attn_norm"][l]),
                    (p + "self_attn.q_proj.weight", to_hf_rows(t["wq"][l], cfg["heads"])),
                    (p + "self_attn.k_proj.weight", to_hf_rows(t["wk"][l], cfg["kv_heads"])),
                    (p + "self_attn.v_proj.weight", t["wv"][l]),
                    (p + "self_attn.o_proj.weight", t["wo"][l]),
                    (p + "post_attention_layernorm.weight", t["ffn_norm"][l]),
                    (p + "mlp.gate_proj.weight", t["w1"][l]),
                    (p + "mlp.up_proj.weight", t["w3"][l]),
                    (p + "mlp.down_proj.weight", t["w2"][l])]
    tensors.append(("model.norm.weight", t["norm"]))
    if not cfg["shared"]:
        tensors.append(("lm_head.weight", t["out"]))
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": cfg["dim"],
              "intermediate_size": cfg["hidden"], "num_hidden_layers": cfg["layers"],
              "num_attention_heads": cfg["heads"], "num_key_value_heads": cfg["kv_heads"],
              "vocab_size": cfg["vocab"], "max_position_embeddings": cfg["seq_len"], "rms_norm_eps": 1e-5,
              "rope_theta": 10000.0, "tie_word_embeddings": cfg["shared"], "hidden_act": "silu",
              "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype]}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if shards == 1:
        write_safetensors(os.path.join(out, "model.safetensors"), tensors, dtype)
        return
    per = (len(tensors) + shards - 1) // shards
    weight_map = {}
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = tensors[s * per:(s + 1) * per]
        write_safetensors(os.path.join(out, name), part, dtype)
        weight_map.update({n: name for n, _ in part})
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2)


if __name__ == "__main__":
    main()
