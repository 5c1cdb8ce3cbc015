#!/usr/bin/env python3
"""Independent SentencePiece BPE reference for the Llama 2 vocabulary: reads Meta's tokenizer.model
(the SentencePiece ModelProto, parsed here by hand) and encodes as SentencePiece's BPE model does: identity
normalisation with the "▁" dummy prefix and spaces escaped to "▁", then repeatedly the adjacent pair whose
joined piece scores highest (leftmost on ties), then <0xNN> byte fallback for characters with no piece.
Shoal's side reads llama2.c's tokenizer.bin instead.

usage: spm_ref.py TOKENIZER_MODEL OUT_PREFIX [N_CASES] [SEED]
Writes OUT_PREFIX.inp and OUT_PREFIX.out in llama.cpp's test-tokenizer format (no BOS)."""
import random
import struct
import sys

from llama3_ref import PARTS


def varint(b, i):
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return v, i


def fields(b):
    """(field number, wire type, value) of a protobuf message; value is bytes for wire type 2."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        yield f, wt, v


def load_model(path):
    """pieces: text -> (id, score, type). ModelProto field 1 is the repeated SentencePiece message
    (1: piece, 2: score, 3: type with 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte)."""
    pieces = {}
    with open(path, "rb") as f:
        data = f.read()
    for fno, _, v in fields(data):
        if fno != 1:
            continue
        text, score, typ = None, 0.0, 1
        for g, _, w in fields(v):
            if g == 1:
                text = w.decode("utf-8")
            elif g == 2:
                score = struct.unpack("<f", w)[0]
            elif g == 3:
                typ = w
        pieces.setdefault(text, (len(pieces), score, typ))
    return pieces


def encode(pieces, text):
    if not text:
        return []
    norm = "\u2581" + text.replace(" ", "\u2581")
    syms = list(norm)
    while True:
        best = None
        for i in range(len(syms) - 1):
            p = pieces.get(syms[i] + syms[i + 1])
            if p is None or p[2] not in (1, 4):
                continue
            if best is None or p[1] > best[0]:
                best = (p[1], i)
        if best is None:
            break
        i = best[1]
        syms[i:i + 2] = [syms[i] + syms[i + 1]]
    ids = []
    for s in syms:
        p = pieces.get(s)
        if p is not None and p[2] in (1, 4):
            ids.append(p[0])
        else:
            ids.extend(pieces["<0x%02X>" % b][0] for b in s.encode("utf-8"))
    return ids


def main():
    model, prefix = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 400
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    pieces = load_model(model)
    with open(prefix + ".inp", "w", encoding="utf-8", newline="") as inp, \
            open(prefix + ".out", "w", encoding="utf-8") as out:
        for _ in range(n):
            text = "".join(rng.choice(PARTS) for _ in range(rng.randint(1, 16)))
            inp.write(text + "\n__ggml_vocab_test__\n")
            out.write(" " + " ".join(str(i) for i in encode(pieces, text)) + "\n")


if __name__ == "__main__":
    main()
