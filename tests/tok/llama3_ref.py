#!/usr/bin/env python3
"""Independent Llama 3 tokenizer reference, tiktoken-style: Meta's tokenizer.model (base64 token bytes and
ranks), the pre-tokenizer regex run by the Python `regex` module, and byte-pair merging by the rank of the
joined bytes. It shares no code or data path with Shoal's tokenizer, which reads tokenizer.json's merges.

usage: llama3_ref.py TOKENIZER_MODEL OUT_PREFIX [N_CASES] [SEED]
Writes OUT_PREFIX.inp and OUT_PREFIX.out in llama.cpp's test-tokenizer format (no BOS)."""
import base64
import random
import sys

# \s as Unicode's White_Space property (what tiktoken's Rust regex means by \s).
WS = "\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
PATTERN = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^WS\\p{L}\\p{N}]+[\\r\\n]*|"
           "[WS]*[\\r\\n]+|[WS]+(?![^WS])|[WS]+").replace("WS", WS)

# Material for random texts: words and symbols of many scripts, digits of several kinds, whitespace runs,
# contractions in both cases, emoji with modifiers and joiners.
PARTS = [
    "the", "The", "THE", " quick", " brown", "fox", "jumps", " over", "lazy", "dog", "I", "you", "we",
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D", "'x", "''",
    "0", "7", "42", "123", "2024", "3.14159", "1,000,000", "\u0661\u0662\u0663", "\u00b2", "\u2167", "\u00bd",
    " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\u00a0", "\u3000", "\u2009", "\u0085", "\u180e",
    ".", ",", "!", "?", "...", "!!", "-", "--", "(", ")", "[", "]", "{", "}", "<", ">", "/", "\\", "\"",
    "'", "`", "@", "#", "$", "%", "^", "&", "*", "_", "=", "+", "|", "~", ":", ";", "<|", "|>",
    "caf\u00e9", "na\u00efve", "\u00fcber", "\u00c5ngstr\u00f6m", "stra\u00dfe", "\u0130stanbul",
    "\u03b1\u03b2\u03b3", "\u0394\u03ad\u03bb\u03c4\u03b1", "\u043f\u0440\u0438\u0432\u0435\u0442",
    "\u041c\u043e\u0441\u043a\u0432\u0430", "\u4f60\u597d", "\u4e16\u754c", "\u65e5\u672c\u8a9e",
    "\ud55c\uad6d\uc5b4", "\u0645\u0631\u062d\u0628\u0627", "\u05e9\u05dc\u05d5\u05dd",
    "\u0928\u092e\u0938\u094d\u0924\u0947", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    "\u1780\u17d2\u1798\u17c2\u179a", "e\u0301", "\u0301",
    "\U0001f600", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\u2764\ufe0f",
    "\U0001f1eb\U0001f1f7", "\u2705", "\u200b", "\ufeff", "\u00ad",
    "def", " main", "():", "return", "x+=1;", "0x7fff", "__init__", "snake_case", "camelCase",
]


def load_ranks(path):
    ranks = {}
    with open(path, "rb") as f:
        for line in f:
            line = line.strip()
            if line:
                tok, rank = line.split()
                ranks[base64.b64decode(tok)] = int(rank)
    return ranks


def bpe(ranks, piece):
    if piece in ranks:
        return [ranks[piece]]
    parts = [piece[i:i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best = None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            break
        i = best[1]
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return [ranks[p] for p in parts]


def encode(ranks, pat, text):
    ids = []
    for piece in pat.findall(text):
        ids.extend(bpe(ranks, piece.encode("utf-8")))
    return ids


def main():
    model, prefix = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 400
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    import regex  # imported here so spm_ref.py can share PARTS without it

    ranks = load_ranks(model)
    pat = regex.compile(PATTERN)
    with open(prefix + ".inp", "w", encoding="utf-8", newline="") as inp, \
            open(prefix + ".out", "w", encoding="utf-8") as out:
        for _ in range(n):
            text = "".join(rng.choice(PARTS) for _ in range(rng.randint(1, 24)))
            inp.write(text + "\n__ggml_vocab_test__\n")
            out.write(" " + " ".join(str(i) for i in encode(ranks, pat, text)) + "\n")


if __name__ == "__main__":
    main()
