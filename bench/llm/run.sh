#!/bin/bash
# bench/llm/run.sh: prefill and decode tok/s of `shoal generate` next to llama.cpp's CPU backend (npm
# node-llama-cpp, prebuilt) on the same GGUF files and thread count; prints ratios and writes the table to
# bench/RESULTS.md (section "LLM inference").
#   bench/llm/run.sh [--threads "2 1"] [--quick] [--no-write]
# --threads takes a list: every model is measured at each count (default "2 1": the target count, and one
# thread as a control that no thread synchronisation can disturb).
# Needs: a built shoal (SHOAL=path, default build/shoal), node 20, and `npm install` run once in bench/llm
# (node_modules is ignored by git). Models are made on first use in bench/llm/models (ignored): the trained
# 260K models converted with `shoal convert`, and random-weight models of real shapes (`--random-shape`).
# Each measurement is the best of REPS runs (the machine is shared; best-of filters out other load).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SHOAL=${SHOAL:-$ROOT/build/shoal}
MODELS_IN=${SHOAL_MODELS:-$ROOT/../shared/models}
THREADS="2 1"
QUICK=0
WRITE=1
REPS=${REPS:-3}
while [ $# -gt 0 ]; do
    case $1 in
    --threads) THREADS=$2; shift ;;
    --quick) QUICK=1 ;;
    --no-write) WRITE=0 ;;
    *) echo "usage: $0 [--threads \"2 1\"] [--quick] [--no-write]"; exit 2 ;;
    esac
    shift
done
[ -x "$SHOAL" ] || { echo "no shoal binary at $SHOAL (build first, or set SHOAL)"; exit 1; }
[ -d "$HERE/node_modules/node-llama-cpp" ] || { echo "run 'npm install' in $HERE first (node-llama-cpp)"; exit 1; }
M=$HERE/models
mkdir -p "$M"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

make_model() { # name, convert args...
    local out=$M/$1.gguf
    shift
    [ -s "$out" ] || "$SHOAL" convert "$@" "$out" >/dev/null 2>&1 || "$SHOAL" convert "$@" "$out"
}
# name | how to make it | vocab | gen tokens
ROWS=()
for t in f32 q8_0; do
    for tiny in stories260K aidreams260K; do
        src=$MODELS_IN/$tiny/$tiny.bin
        [ -f "$src" ] || continue
        make_model "$tiny-$t" "$src" --type $t --tokenizer "$MODELS_IN/$tiny/tok512.bin"
        ROWS+=("$tiny-$t 512 100")
    done
    make_model "r110m-$t" --random-shape 110m --type $t --tokenizer "$MODELS_IN/llama2-tokenizer/tokenizer.bin"
    ROWS+=("r110m-$t 32000 64")
    if [ $QUICK = 0 ]; then
        make_model "r1b-$t" --random-shape 1b --type $t --tokenizer "$MODELS_IN/llama3-tokenizer/tokenizer.json"
        ROWS+=("r1b-$t 128256 16")
    fi
done

prompt_ids() { # n, vocab: BOS then a fixed pseudo-random sequence
    python3 -c "
import sys
n, v = int(sys.argv[1]), int(sys.argv[2])
s, ids = 12345, [1]
for _ in range(n - 1):
    s = (s * 1103515245 + 12345) % 2147483648
    ids.append(3 + s % min(v - 3, 1000))
print(','.join(map(str, ids)))" "$1" "$2"
}

best() { sort -g | tail -1; }
results=()
printf '%-20s %3s %10s %10s %7s %10s %10s %7s\n' model thr "shoal pf" "llama pf" ratio "shoal dec" "llama dec" ratio
for row in "${ROWS[@]}"; do
    read -r name vocab gen <<<"$row"
    file=$M/$name.gguf
    n_prompt=128
    [ "$vocab" = 512 ] && n_prompt=64
    ids=$(prompt_ids $n_prompt "$vocab")
    for th in $THREADS; do
        spf=(); sdec=(); lpf=(); ldec=()
        for _ in $(seq "$REPS"); do
            line=$("$SHOAL" generate --model "$file" --prompt-ids "$ids" -n "$gen" --temp 0 --ignore-eos \
                --threads "$th" --ctx $((n_prompt + gen + 8)) 2>&1 >/dev/null | grep '^timings:')
            spf+=("$(sed -E 's/.*prefill ([0-9.]+) tok\/s.*/\1/' <<<"$line")")
            sdec+=("$(sed -E 's/.*decode ([0-9.]+) tok\/s.*/\1/' <<<"$line")")
            js=$(cd "$HERE" && node llamacpp.mjs "$file" "$th" "$ids" "$gen")
            lpf+=("$(sed -E 's/.*"prefill_tps":([0-9.e+-]+).*/\1/' <<<"$js")")
            ldec+=("$(sed -E 's/.*"decode_tps":([0-9.e+-]+).*/\1/' <<<"$js")")
        done
        a=$(printf '%s\n' "${spf[@]}" | best); b=$(printf '%s\n' "${lpf[@]}" | best)
        c=$(printf '%s\n' "${sdec[@]}" | best); d=$(printf '%s\n' "${ldec[@]}" | best)
        r1=$(python3 -c "print('%.2f' % ($a / $b))"); r2=$(python3 -c "print('%.2f' % ($c / $d))")
        printf '%-20s %3s %10.1f %10.1f %7s %10.1f %10.1f %7s\n' "$name" "$th" "$a" "$b" "$r1" "$c" "$d" "$r2"
        results+=("| $name | $th | $n_prompt | $(printf %.1f "$a") | $(printf %.1f "$b") | $r1 | $gen | $(printf %.1f "$c") | $(printf %.1f "$d") | $r2 |")
    done
done

[ $WRITE = 1 ] || exit 0
OUT=$ROOT/bench/RESULTS.md
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
llv=$(node -e "console.log(require('$HERE/node_modules/node-llama-cpp/package.json').version)")
{
    echo "<!-- LLM-BEGIN (bench/llm/run.sh writes this section) -->"
    echo "## LLM inference: shoal generate vs llama.cpp (CPU)"
    echo
    echo "\`bench/llm/run.sh\`, $(date -u +%Y-%m-%d), $cpu, threads: $THREADS, best of $REPS runs each;"
    echo "llama.cpp = node-llama-cpp $llv prebuilt CPU binary. Same GGUF files (from \`shoal convert\`), same"
    echo "prompt ids, greedy. pf = prefill tok/s (prompt tokens / time), dec = decode tok/s (tokens after the"
    echo "first / time). Ratio = shoal / llama.cpp (> 1: shoal faster). r110m/r1b: random weights, real shapes"
    echo "(110M: dim 768, 12 layers; 1B: Llama-3.2-1B shape, vocab 128256, tied). The machine is shared, so"
    echo "absolute numbers move with other load; the ratios are what the runs compare. Load average at the"
    echo "start: $LOAD_START, at the end: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores). llama.cpp's threads wait"
    echo "for each other at every op by spinning; when the machine has more runnable threads than cores, its"
    echo "multi-threaded rows collapse, while shoal's pool hands a late thread's chunks to the others. The"
    echo "1-thread rows involve no synchronisation and compare the kernels alone."
    echo
    echo "| model | threads | prompt | shoal pf | llama.cpp pf | pf ratio | gen | shoal dec | llama.cpp dec | dec ratio |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    printf '%s\n' "${results[@]}"
    echo "<!-- LLM-END -->"
} >"$M/section.md"
if [ -f "$OUT" ] && grep -q 'LLM-BEGIN' "$OUT"; then
    python3 - "$OUT" "$M/section.md" <<'PY'
import sys
out, sec = sys.argv[1], open(sys.argv[2]).read()
s = open(out).read()
i, j = s.index("<!-- LLM-BEGIN"), s.index("<!-- LLM-END -->") + len("<!-- LLM-END -->\n")
open(out, "w").write(s[:i] + sec + s[j:])
PY
else
    { [ -f "$OUT" ] && echo; cat "$M/section.md"; } >>"$OUT"
fi
echo "wrote $OUT"
