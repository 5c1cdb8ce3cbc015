#!/bin/bash
# Tokenization against independent references on random texts mixing scripts, digits, whitespace runs,
# contractions and emoji (arg: the tok_compare binary):
#   Llama 3: tests/tok/llama3_ref.py, tiktoken-style (Meta's tokenizer.model ranks, the Python `regex`
#            module, byte-pair merging by rank) vs Shoal reading tokenizer.json's merges;
#   Llama 2: tests/tok/spm_ref.py, SentencePiece BPE from Meta's tokenizer.model (protobuf parsed by hand)
#            vs Shoal reading llama2.c's tokenizer.bin.
# Each reference must first reproduce llama.cpp's 46 expected outputs, or it proves nothing.
set -euo pipefail
compare="$1"
here="$(cd "$(dirname "$0")" && pwd)"
models="${SHOAL_MODELS:-../shared/models}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
ran=0

selfcheck() { # MODULE MODEL_FILE GGUF_NAME
    python3 - "$here" "$1" "$2" "$models/vocab/$3" <<'PY'
import importlib, sys
sys.path.insert(0, sys.argv[1])
R = importlib.import_module(sys.argv[2])
if sys.argv[2] == "llama3_ref":
    import regex
    ranks, pat = R.load_ranks(sys.argv[3]), regex.compile(R.PATTERN)
    enc = lambda t: R.encode(ranks, pat, t)
else:
    pieces = R.load_model(sys.argv[3])
    enc = lambda t: R.encode(pieces, t)
try:
    inp = open(sys.argv[4] + ".inp", encoding="utf-8", newline="").read().split("\n__ggml_vocab_test__\n")[:-1]
    out = open(sys.argv[4] + ".out").read().split("\n")
except OSError:
    print("reference self-check skipped: no llama.cpp vocab cases")
    sys.exit(0)
bad = [t for t, o in zip(inp, out) if enc(t) != [int(x) for x in o.split()]]
print(f"{sys.argv[2]}: {len(inp) - len(bad)} of {len(inp)} llama.cpp cases match")
sys.exit(1 if bad else 0)
PY
}

l3="$models/llama3-tokenizer"
if [ -f "$l3/tokenizer.model" ] && [ -f "$l3/tokenizer.json" ] && python3 -c 'import regex' 2>/dev/null; then
    selfcheck llama3_ref "$l3/tokenizer.model" ggml-vocab-llama-bpe.gguf
    for seed in 1 2; do
        python3 "$here/llama3_ref.py" "$l3/tokenizer.model" "$tmp/l3_$seed" 400 "$seed"
        "$compare" "$l3/tokenizer.json" 0 "$tmp/l3_$seed.inp" "$tmp/l3_$seed.out"
    done
    ran=1
else
    echo "Llama 3 part skipped: $l3 or the Python regex module (python3-regex) missing"
fi

l2="$models/llama2-tokenizer"
if [ -f "$l2/tokenizer.model" ] && [ -f "$l2/tokenizer.bin" ]; then
    selfcheck spm_ref "$l2/tokenizer.model" ggml-vocab-llama-spm.gguf
    for seed in 1 2; do
        python3 "$here/spm_ref.py" "$l2/tokenizer.model" "$tmp/l2_$seed" 400 "$seed"
        "$compare" "$l2/tokenizer.bin" 32000 "$tmp/l2_$seed.inp" "$tmp/l2_$seed.out"
    done
    ran=1
else
    echo "Llama 2 part skipped: $l2 missing"
fi
[ "$ran" = 1 ] || { echo "SKIP: no tokenizer data under $models (set SHOAL_MODELS)"; exit 77; }
