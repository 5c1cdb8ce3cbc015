#!/usr/bin/env python3
"""A plain safetensors reader (numpy only, written from the format's description) that opens a Shoal KV
snapshot the way any other tool would, and checks that it is well-formed: header, dtypes, shapes, offsets
covering the data exactly, and the metadata Shoal promises. Prints a short summary; exit 1 on a problem."""
import json
import struct
import sys

import numpy as np

DT = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "BF16": None}


def load(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors, spans = {}, []
    for name, t in header.items():
        b, e = t["data_offsets"]
        dt = np.dtype(DT[t["dtype"]]).newbyteorder("<")
        arr = np.frombuffer(data[b:e], dtype=dt)
        count = int(np.prod(t["shape"])) if t["shape"] else 1
        assert arr.size == count, f"{name}: {arr.size} elements for shape {t['shape']}"
        tensors[name] = arr.reshape(t["shape"])
        spans.append((b, e))
    spans.sort()
    pos = 0
    for b, e in spans:
        assert b == pos, f"gap or overlap at {b} (expected {pos})"
        pos = e
    assert pos == len(data), f"tensors cover {pos} of {len(data)} data bytes"
    return meta, tensors


def main():
    meta, t = load(sys.argv[1])
    assert all(isinstance(v, str) for v in meta.values()), "metadata values must be strings"
    assert meta["format"] == "shoal-kv-snapshot" and meta["format_version"] == "1"
    assert meta["model_id"].startswith("sha256:") and len(meta["model_id"]) == 71
    assert meta["checksum"].startswith("xxh3-64:")
    L, P, D = int(meta["n_layers"]), int(meta["n_positions"]), int(meta["kv_dim"])
    for l in range(L):
        for kv in "kv":
            a = t[f"layers.{l}.{kv}"]
            assert a.shape == (P, D) and a.dtype.name == {"F32": "float32", "F16": "float16"}[meta["dtype"]]
            assert np.isfinite(a).all(), f"layers.{l}.{kv} has non-finite values"
            if P:
                assert np.abs(a).max() > 0, f"layers.{l}.{kv} is all zero"
    assert t["tokens"].shape == (int(meta["n_tokens"]),)
    if len(sys.argv) > 2:  # the expected leading token ids
        want = [int(x) for x in sys.argv[2].split(",")]
        got = t["tokens"][:len(want)].tolist()
        assert got == want, f"tokens {got} != {want}"
    print(f"ok: {len(t)} tensors, {P} positions, {meta['dtype']}, tokens {t['tokens'][:8].tolist()}...")


if __name__ == "__main__":
    main()
