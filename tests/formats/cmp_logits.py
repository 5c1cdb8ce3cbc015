#!/usr/bin/env python3
"""Compares two llm_dump outputs (tests/llm/llm_dump.c format) of the same prompt.

usage: cmp_logits.py REF OTHER --tol T [--exact]
Checks the first step's logits (the prompt's last position, before greedy paths can diverge):
max |ref - other| / max |ref| <= T, and reports how many greedy tokens agree. --exact: byte equality.
"""
import struct
import sys

import numpy as np


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    n_prompt, steps, vocab = struct.unpack("<3i", data[:12])
    off = 12 + 4 * n_prompt
    toks, logits = [], []
    for _ in range(steps):
        toks.append(struct.unpack("<i", data[off:off + 4])[0])
        logits.append(np.frombuffer(data, dtype="<f4", count=vocab, offset=off + 4))
        off += 4 + 4 * vocab
    return toks, logits


def main():
    ref_path, other_path = sys.argv[1], sys.argv[2]
    tol = float(sys.argv[sys.argv.index("--tol") + 1]) if "--tol" in sys.argv else 0.0
    if "--exact" in sys.argv:
        same = open(ref_path, "rb").read() == open(other_path, "rb").read()
        print("bit-identical" if same else "DIFFERENT")
        sys.exit(0 if same else 1)
    rt, rl = load(ref_path)
    ot, ol = load(other_path)
    a, b = rl[0].astype(np.float64), ol[0].astype(np.float64)
    rel = float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-30))
    agree = 0
    for x, y in zip(rt, ot):
        if x != y:
            break
        agree += 1
    ok = rel <= tol
    print(f"first-step logits rel err {rel:.2e} (tol {tol:g}); greedy tokens agree {agree}/{len(rt)}"
          + ("" if ok else "  FAIL"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
