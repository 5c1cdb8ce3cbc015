#!/usr/bin/env python3
"""Creates a Llama-3.2-1B-shaped model with random weights (Hugging Face layout: config.json +
model.safetensors), and teacher-forced reference logits from PyTorch's own forward pass of those weights.

  make_model.py OUTDIR [--dtype bfloat16|float32] [--tokens 256] [--seed 0] [--layers 16]

Writes OUTDIR/config.json, OUTDIR/model.safetensors, OUTDIR/tokens.txt (the token sequence, one id per
line) and OUTDIR/ref_logits_<dtype>.npy ([tokens, vocab] float32: logits after each position)."""
import argparse, json, os, sys, time

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, default=16)
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    torch.manual_seed(a.seed)
    cfg = LlamaConfig(
        vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=a.layers,
        num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=131072,
        rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True, bos_token_id=128000,
        eos_token_id=128001, hidden_act="silu",
        rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8192},
    )
    dtype = getattr(torch, a.dtype)
    t0 = time.time()
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(dtype)
    model.eval()
    # Random norms too, so a wrong norm shows in the logits (HF initialises them to ones).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    model.save_pretrained(a.outdir, safe_serialization=True)
    print(f"model: {sum(p.numel() for p in model.parameters())/1e9:.3f} B params, {a.dtype}, "
          f"saved in {time.time()-t0:.1f} s", file=sys.stderr)
    g = torch.Generator().manual_seed(a.seed + 1)
    ids = torch.randint(0, cfg.vocab_size, (1, a.tokens), generator=g)
    ids[0, 0] = 128000
    with open(os.path.join(a.outdir, "tokens.txt"), "w") as f:
        f.write("\n".join(str(int(x)) for x in ids[0]) + "\n")
    # The references come from the saved files, loaded the way users load them: casting a live model with
    # .to(bfloat16) would also round the rotary inverse-frequency buffer to bf16 (then every position > 0
    # drifts), which from_pretrained does not do.
    del model
    torch.cuda.empty_cache()
    for name, dt in ((a.dtype, dtype), ("float32", torch.float32)):
        if name == "float32" and a.dtype == "float32" and os.path.exists(os.path.join(a.outdir, "ref_logits_float32.npy")):
            continue
        m = LlamaForCausalLM.from_pretrained(a.outdir, dtype=dt).cuda().eval()
        rot = getattr(m.model, "rotary_emb", None)
        if rot is not None and hasattr(rot, "inv_freq"):
            print(f"{name}: rotary inv_freq dtype {rot.inv_freq.dtype}", file=sys.stderr)
        with torch.no_grad():
            out = m(ids.cuda()).logits[0].float().cpu().numpy()
        np.save(os.path.join(a.outdir, f"ref_logits_{name}.npy"), out)
        print(f"reference logits {name} {out.shape} written", file=sys.stderr)
        del m
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
