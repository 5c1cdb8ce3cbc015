#!/usr/bin/env python3
"""PyTorch's decode speed on the same model, as the peer in bench/cuda: eager (dynamic cache) and
torch.compile with a static cache. Prints one line per mode: `torch-<mode> decode_tok_s=<x> prefill_tok_s=<y>`.

  torch_peer.py MODELDIR [--prompt 128] [--new 128]"""
import argparse, sys, time

import torch
from transformers import AutoModelForCausalLM


def timed_generate(model, ids, new, **kw):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = model.generate(ids, max_new_tokens=new, min_new_tokens=new, do_sample=False, **kw)
    torch.cuda.synchronize()
    return time.perf_counter() - t0, out.shape[1] - ids.shape[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("modeldir")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=128)
    a = ap.parse_args()
    model = AutoModelForCausalLM.from_pretrained(a.modeldir, torch_dtype=torch.bfloat16).cuda().eval()
    model.generation_config.pad_token_id = 128001
    ids = torch.randint(0, 128000, (1, a.prompt), device="cuda")
    # prefill speed: one forward over the prompt
    with torch.no_grad():
        for _ in range(2):
            model(ids)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        model(ids)
        torch.cuda.synchronize()
        prefill = a.prompt / (time.perf_counter() - t0)
    for mode in ("eager", "compile-static"):
        try:
            kw = {}
            if mode == "compile-static":
                model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
                kw = {"cache_implementation": "static"}
            timed_generate(model, ids, 8, **kw)  # warm-up (and compilation)
            timed_generate(model, ids, 8, **kw)
            # decode rate: time of (prompt + N new) minus time of (prompt + 1 new), over N-1 tokens
            t_full, n = timed_generate(model, ids, a.new, **kw)
            t_one, _ = timed_generate(model, ids, 1, **kw)
            rate = (n - 1) / max(t_full - t_one, 1e-9)
            print(f"torch-{mode} decode_tok_s={rate:.1f} prefill_tok_s={prefill:.0f}", flush=True)
        except Exception as e:  # report, do not hide: the table shows the peer as failed
            print(f"torch-{mode} failed: {type(e).__name__}: {str(e)[:200]}", flush=True)


if __name__ == "__main__":
    main()
