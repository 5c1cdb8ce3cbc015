#!/bin/bash
# Round trips through `shoal convert` on every llama2.c model in $SHOAL_MODELS:
#   .bin -> GGUF f32: bit-identical logits (llm_dump) and the same model identity (shoal info);
#   GGUF -> GGUF: a byte-identical file;  .bin -> GGUF f16/bf16/q8_0/q4_0: logits within tolerances;
#   .bin -> Hugging Face folder (tests/formats/make_hf.py, numpy only; single file and 3 shards, F32):
#   bit-identical logits; BF16 within tolerance; HF -> GGUF: bit-identical; a config.json that does not
#   match the weights fails with a message;  llama.cpp (node-llama-cpp, when installed) loads the converted
#   files and its greedy tokens equal Shoal's. Then a random Llama 3 style model (make_random_hf.py: BPE
#   tokenizer.json, GQA, tied, llama3 rope scaling) through safetensors -> GGUF and llama.cpp.
# usage: roundtrip.sh LLM_DUMP     (env: SHOAL, SHOAL_MODELS, SHOAL_SOURCE_DIR, NODE_LLAMA_CPP_DIR optional)
set -u
DUMP=$1
[ -x "$DUMP" ] || { echo "FAIL: llm_dump not found at $DUMP"; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)
PY=""
for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null && "$p" -c "import numpy" 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "SKIP: no python3 with numpy (apt-get install python3-numpy)"; exit 77; }
MODELS=()
for f in "${SHOAL_MODELS:-/nonexistent}"/*/*.bin; do
    case $(basename "$f") in tok*.bin) continue ;; esac
    [ -f "$f" ] && [ -f "$(dirname "$f")/tok512.bin" ] && MODELS+=("$f")
done
[ ${#MODELS[@]} -gt 0 ] || { echo "SKIP: no llama2.c models under SHOAL_MODELS=${SHOAL_MODELS:-}"; exit 77; }
NM=""
for d in "${NODE_LLAMA_CPP_DIR:-}" "${SHOAL_SOURCE_DIR:-.}/bench/llm/node_modules" "$HERE/node_modules"; do
    [ -n "$d" ] && [ -f "$d/node-llama-cpp/dist/index.js" ] && command -v node >/dev/null && { NM=$d; break; }
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
check() { # description, command...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}
ident() { "$SHOAL" info "$1" 2>&1 | sed -n 's/^identity: *//p'; }
PROMPTS=("1 403 407 261 378" "1" "1 45 67 89 123 234 345 456 78 90 111 222 333 444 55 66 77 88 99 100")

for m in "${MODELS[@]}"; do
    name=$(basename "$m" .bin)
    tok=$(dirname "$m")/tok512.bin
    echo "== $name"
    check "convert to f32" "$SHOAL" convert "$m" "$TMP/$name.gguf" --tokenizer "$tok"
    id_bin=$(ident "$m"); id_gguf=$(ident "$TMP/$name.gguf")
    echo "     identity .bin $id_bin"
    check "identity of .bin and f32 GGUF agree" test -n "$id_bin" -a "$id_bin" = "$id_gguf"
    check "GGUF -> GGUF is byte-identical" bash -c "'$SHOAL' convert '$TMP/$name.gguf' '$TMP/again.gguf' 2>/dev/null && cmp '$TMP/$name.gguf' '$TMP/again.gguf'"
    "$PY" "$HERE/make_hf.py" "$m" "$TMP/hf"
    "$PY" "$HERE/make_hf.py" "$m" "$TMP/hf3" --shards 3
    "$PY" "$HERE/make_hf.py" "$m" "$TMP/hfbf" --dtype BF16
    check "HF folder -> GGUF" "$SHOAL" convert "$TMP/hf3" "$TMP/hf.gguf" --tokenizer "$tok"
    for t in f16 bf16 q8_0 q4_0; do
        "$SHOAL" convert "$m" "$TMP/$name-$t.gguf" --tokenizer "$tok" --type $t 2>"$TMP/log" || { cat "$TMP/log"; fail=1; }
    done
    grep -h "note:" "$TMP/log"
    for p in "${PROMPTS[@]}"; do
        echo "  prompt \"${p:0:24}\""
        "$DUMP" "$m" "$TMP/ref.d" -n 40 $p || { fail=1; continue; }
        for f in "$TMP/$name.gguf" "$TMP/hf" "$TMP/hf3/model.safetensors.index.json" "$TMP/hf.gguf"; do
            "$DUMP" "$f" "$TMP/x.d" -n 40 $p || { fail=1; continue; }
            out=$("$PY" "$HERE/cmp_logits.py" "$TMP/ref.d" "$TMP/x.d" --exact); rc=$?
            check "$(basename "$f") logits vs .bin: $out" test $rc = 0
        done
        for tt in "f16 2e-3" "bf16 2e-2" "q8_0 6e-2" "q4_0 0.35"; do
            set -- $tt
            "$DUMP" "$TMP/$name-$1.gguf" "$TMP/x.d" -n 40 $p || { fail=1; continue; }
            out=$("$PY" "$HERE/cmp_logits.py" "$TMP/ref.d" "$TMP/x.d" --tol "$2"); rc=$?
            check "$1: $out" test $rc = 0
        done
        "$DUMP" "$TMP/hfbf" "$TMP/x.d" -n 40 $p || fail=1
        out=$("$PY" "$HERE/cmp_logits.py" "$TMP/ref.d" "$TMP/x.d" --tol 2e-2); rc=$?
        check "HF BF16: $out" test $rc = 0
        if [ -n "$NM" ] && [ "$p" != "1" ]; then
            ours=$("$PY" -c "
import struct,sys
d=open('$TMP/ref.d','rb').read(); n,s,v=struct.unpack('<3i',d[:12]); o=12+4*n; t=[]
for i in range(20): t.append(struct.unpack('<i',d[o:o+4])[0]); o+=4+4*v
print(' '.join(map(str,t)))")
            theirs=$(node "$HERE/llamacpp_gen.mjs" "$NM" "$TMP/$name.gguf" 20 $p 2>"$TMP/nlog" | tail -1)
            check "llama.cpp greedy tokens = Shoal's (20): $theirs" test "$ours" = "$theirs"
        fi
    done
    # A config.json that does not match the weights.
    sed -i 's/"intermediate_size": [0-9]*/"intermediate_size": 96/' "$TMP/hf/config.json"
    msg=$("$SHOAL" info "$TMP/hf" 2>&1 >/dev/null)
    echo "     bad config -> $msg"
    check "mismatched config.json is refused" bash -c "[[ '$msg' == *'has shape'* ]]"
    rm -rf "$TMP/hf" "$TMP/hf3" "$TMP/hfbf"
done
tokens_of() { "$PY" -c "
import struct,sys
d=open(sys.argv[1],'rb').read(); n,s,v=struct.unpack('<3i',d[:12]); o=12+4*n; t=[]
for i in range(s): t.append(struct.unpack('<i',d[o:o+4])[0]); o+=4+4*v
print(' '.join(map(str,t)))" "$1"; }
TJ=${SHOAL_MODELS}/llama3-tokenizer/tokenizer.json
if [ -f "$TJ" ]; then
    # Llama 3 style: byte-level BPE tokenizer.json, GQA, tied output, rope scaling (original context 64, so
    # that it changes the result at short positions), random weights.
    echo "== random Llama 3 style model (tokenizer.json, GQA, tied, llama3 rope scaling)"
    "$PY" "$HERE/make_random_hf.py" "$TJ" "$TMP/l3"
    check "HF Llama 3 folder -> GGUF" "$SHOAL" convert "$TMP/l3" "$TMP/l3.gguf"
    check "info shows the scaling and the tokenizer" bash -c "'$SHOAL' info '$TMP/l3.gguf' | grep -q 'llama3 scaling (factor 32' && '$SHOAL' info '$TMP/l3.gguf' | grep -q 'byte-level BPE, 128256 tokens'"
    P="128000 9906 1917 11 1268 527 499 30 358 1097 1695 13"
    "$DUMP" "$TMP/l3" "$TMP/a.d" -n 16 $P && "$DUMP" "$TMP/l3.gguf" "$TMP/b.d" -n 16 $P || fail=1
    out=$("$PY" "$HERE/cmp_logits.py" "$TMP/a.d" "$TMP/b.d" --exact); rc=$?
    check "Llama 3 style: GGUF logits vs safetensors: $out" test $rc = 0
    "$PY" -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); del c['rope_scaling']; json.dump(c,open(p,'w'))" "$TMP/l3/config.json"
    "$DUMP" "$TMP/l3" "$TMP/c.d" -n 16 $P || fail=1
    check "the scaling changes the tokens (so the comparison below means something)" test "$(tokens_of "$TMP/a.d")" != "$(tokens_of "$TMP/c.d")"
    if [ -n "$NM" ]; then
        theirs=$(node "$HERE/llamacpp_gen.mjs" "$NM" "$TMP/l3.gguf" 16 $P 2>"$TMP/nlog" | tail -1)
        check "llama.cpp greedy tokens = Shoal's (16): $theirs" test "$(tokens_of "$TMP/a.d")" = "$theirs"
    fi
    rm -rf "$TMP/l3" "$TMP/l3.gguf"
else
    echo "note: no $TJ: Llama 3 style checks skipped"
fi
[ -n "$NM" ] || echo "note: node-llama-cpp not found (NODE_LLAMA_CPP_DIR or bench/llm/node_modules): llama.cpp cross-check skipped"

echo "== shoal convert usage errors"
msg=$("$SHOAL" convert "${MODELS[0]}" "$TMP/x.gguf" --type q5_k 2>&1); echo "     $msg"
check "unknown --type refused" bash -c "[[ '$msg' == *'unknown --type'* ]]"
msg=$("$SHOAL" convert --random-shape 7b "$TMP/x.gguf" 2>&1); echo "     $msg"
check "unknown --random-shape refused" bash -c "[[ '$msg' == *'unknown --random-shape'* ]]"
msg=$("$SHOAL" convert /nonexistent.bin "$TMP/x.gguf" 2>&1); echo "     $msg"
check "missing input refused" bash -c "[[ '$msg' == *'cannot open'* ]]"
exit $fail
