#!/bin/bash
# Llama 3 tokenization against an independent reference (tests/tok/llama3_ref.py: Meta's tiktoken ranks from
# tokenizer.model, the Python `regex` module, byte-pair merging by rank) on 400 random texts mixing scripts,
# digits, whitespace, contractions and emoji. Shoal's side reads tokenizer.json (merges), so the two share
# neither data path nor algorithm. Arg: the tok_compare binary.
set -euo pipefail
compare="$1"
here="$(cd "$(dirname "$0")" && pwd)"
dir="${SHOAL_MODELS:-../shared/models}/llama3-tokenizer"
if [ ! -f "$dir/tokenizer.model" ] || [ ! -f "$dir/tokenizer.json" ]; then
    echo "SKIP: $dir/tokenizer.model or tokenizer.json not found (set SHOAL_MODELS)"
    exit 77
fi
if ! python3 -c 'import regex' 2>/dev/null; then
    echo "SKIP: the Python regex module is missing (Debian package python3-regex)"
    exit 77
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The reference must first reproduce llama.cpp's own expected ids, or it proves nothing.
python3 - "$here" "$dir/tokenizer.model" "${SHOAL_MODELS:-../shared/models}/vocab" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import llama3_ref as R, regex
ranks = R.load_ranks(sys.argv[2])
pat = regex.compile(R.PATTERN)
base = sys.argv[3] + "/ggml-vocab-llama-bpe.gguf"
try:
    inp = open(base + ".inp", encoding="utf-8", newline="").read().split("\n__ggml_vocab_test__\n")[:-1]
    out = open(base + ".out").read().split("\n")
except OSError:
    sys.exit(0)
bad = [t for t, o in zip(inp, out) if R.encode(ranks, pat, t) != [int(x) for x in o.split()]]
print(f"reference: {len(inp) - len(bad)} of {len(inp)} llama.cpp cases match")
sys.exit(1 if bad else 0)
PY
for seed in 1 2; do
    python3 "$here/llama3_ref.py" "$dir/tokenizer.model" "$tmp/r$seed" 400 "$seed"
    "$compare" "$dir/tokenizer.json" 0 "$tmp/r$seed.inp" "$tmp/r$seed.out"
done
