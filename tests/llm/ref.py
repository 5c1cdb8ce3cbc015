#!/usr/bin/env python3
"""ref.py: an independent float64 numpy Llama forward pass over a llama2.c .bin checkpoint (tests only).

It reads the file itself (no code shared with the C engine) and follows Meta's/llama2.c's definitions:
RMSNorm, RoPE on interleaved pairs with theta 10000, grouped-query attention, SwiGLU, tied or untied
classifier (the sign of vocab_size).

  ref.py MODEL.bin --prompt 1,2,3 -n 128         prints the greedy tokens
  ref.py MODEL.bin --compare DUMP                checks a dump from llm_dump (see compare())
"""
import argparse
import struct
import sys

import numpy as np


class Model:
    def __init__(self, path):
        raw = open(path, "rb").read()
        dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("<7i", raw[:28])
        self.shared = vocab > 0
        vocab = abs(vocab)
        self.dim, self.hidden, self.n_layers = dim, hidden, n_layers
        self.n_heads, self.n_kv, self.vocab, self.seq_len = n_heads, n_kv, vocab, seq_len
        self.hd = dim // n_heads
        kv_dim = self.hd * n_kv
        f = np.frombuffer(raw, dtype="<f4", offset=28).astype(np.float64)
        off = 0

        def take(*shape):
            nonlocal off
            n = int(np.prod(shape))
            a = f[off:off + n].reshape(shape)
            off += n
            return a

        self.emb = take(vocab, dim)
        self.rms_att = take(n_layers, dim)
        self.wq = take(n_layers, dim, dim)
        self.wk = take(n_layers, kv_dim, dim)
        self.wv = take(n_layers, kv_dim, dim)
        self.wo = take(n_layers, dim, dim)
        self.rms_ffn = take(n_layers, dim)
        self.w1 = take(n_layers, hidden, dim)
        self.w2 = take(n_layers, dim, hidden)
        self.w3 = take(n_layers, hidden, dim)
        self.rms_final = take(dim)
        off += seq_len * self.hd  # legacy freq_cis_real / freq_cis_imag
        self.wcls = self.emb if self.shared else take(vocab, dim)
        assert off == f.size, "file size does not match the header"
        self.freqs = 1.0 / (10000.0 ** (np.arange(0, self.hd, 2, dtype=np.float64) / self.hd))
        self.reset()

    def reset(self):
        kv_dim = self.hd * self.n_kv
        self.kc = np.zeros((self.n_layers, self.seq_len, kv_dim))
        self.vc = np.zeros((self.n_layers, self.seq_len, kv_dim))
        self.pos = 0

    @staticmethod
    def rmsnorm(x, w):
        return x / np.sqrt(np.mean(x * x) + 1e-5) * w

    def rope(self, v, pos):
        ang = pos * self.freqs
        c, s = np.cos(ang), np.sin(ang)
        v = v.reshape(-1, self.hd // 2, 2)
        a, b = v[..., 0], v[..., 1]
        return np.stack([a * c - b * s, a * s + b * c], axis=-1).reshape(-1)

    def step(self, token):
        """One token at self.pos; returns float64 logits."""
        p = self.pos
        x = self.emb[token].copy()
        group = self.n_heads // self.n_kv
        for l in range(self.n_layers):
            xb = self.rmsnorm(x, self.rms_att[l])
            q = self.rope(self.wq[l] @ xb, p)
            k = self.rope(self.wk[l] @ xb, p)
            v = self.wv[l] @ xb
            self.kc[l, p] = k
            self.vc[l, p] = v
            out = np.empty(self.dim)
            for h in range(self.n_heads):
                kh = h // group
                qh = q[h * self.hd:(h + 1) * self.hd]
                ks = self.kc[l, :p + 1, kh * self.hd:(kh + 1) * self.hd]
                vs = self.vc[l, :p + 1, kh * self.hd:(kh + 1) * self.hd]
                sc = ks @ qh / np.sqrt(self.hd)
                sc = np.exp(sc - sc.max())
                sc /= sc.sum()
                out[h * self.hd:(h + 1) * self.hd] = sc @ vs
            x = x + self.wo[l] @ out
            xb = self.rmsnorm(x, self.rms_ffn[l])
            g = self.w1[l] @ xb
            h1 = g / (1.0 + np.exp(-g)) * (self.w3[l] @ xb)
            x = x + self.w2[l] @ h1
        self.pos += 1
        return self.wcls @ self.rmsnorm(x, self.rms_final)


def read_dump(path):
    """llm_dump output: int32 n_prompt, n_steps, vocab; int32 prompt[n_prompt]; then per step int32 token
    and float32 logits[vocab] (the logits that chose it)."""
    b = open(path, "rb").read()
    n_prompt, n_steps, vocab = struct.unpack("<3i", b[:12])
    off = 12
    prompt = list(struct.unpack("<%di" % n_prompt, b[off:off + 4 * n_prompt]))
    off += 4 * n_prompt
    steps = []
    for _ in range(n_steps):
        (tok,) = struct.unpack("<i", b[off:off + 4])
        off += 4
        lg = np.frombuffer(b, dtype="<f4", count=vocab, offset=off).astype(np.float64)
        off += 4 * vocab
        steps.append((tok, lg))
    return prompt, steps


def compare(model, dump, tol):
    prompt, steps = read_dump(dump)
    m = Model(model)
    for t in prompt:
        logits = m.step(t)
    worst = 0.0
    for i, (tok, lg) in enumerate(steps):
        ref_tok = int(np.argmax(logits))
        err = float(np.max(np.abs(lg - logits)) / np.max(np.abs(logits)))
        worst = max(worst, err)
        if err > tol:
            print("step %d: logits relative error %.3g > %.3g" % (i, err, tol))
            return 1
        if tok != ref_tok:
            print("step %d: engine chose %d, reference %d" % (i, tok, ref_tok))
            return 1
        if i + 1 < len(steps) and m.pos < m.seq_len:
            logits = m.step(tok)
    print("ok: %d prompt tokens, %d greedy tokens match; max logits relative error %.3g"
          % (len(prompt), len(steps), worst))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--prompt", default="1")
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("--compare")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    if a.compare:
        return compare(a.model, a.compare, a.tol)
    m = Model(a.model)
    toks = [int(t) for t in a.prompt.split(",")]
    for t in toks:
        logits = m.step(t)
    out = []
    for _ in range(a.n):
        t = int(np.argmax(logits))
        out.append(t)
        logits = m.step(t)
    print(" ".join(map(str, out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
