#!/bin/bash
# Compares the engine with the float64 numpy reference (ref.py) on every llama2.c model in $SHOAL_MODELS:
# logits within 1e-4 relative error (f32) and greedy tokens exact for >= 128 tokens (or up to the model's
# context), for several prompts, batch splits, thread counts and both kernel sets.
set -u
DUMP=$1
HERE=$(cd "$(dirname "$0")" && pwd)
PY=""
for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null && "$p" -c "import numpy" 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "SKIP: no python3 with numpy (apt-get install python3-numpy)"; exit 77; }
MODELS=()
for f in "${SHOAL_MODELS:-/nonexistent}"/*/*.bin; do
    case $(basename "$f") in tok*.bin) continue ;; esac
    [ -f "$f" ] && MODELS+=("$f")
done
[ ${#MODELS[@]} -gt 0 ] || { echo "SKIP: no llama2.c models under SHOAL_MODELS=${SHOAL_MODELS:-}"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
PROMPTS=("1" "1 300 400 500 301 260 270"
         "1 45 67 89 123 234 345 456 78 90 111 222 333 444 55 66 77 88 99 100 200 300 400 500 27 28 29 30 31 32 33")
for m in "${MODELS[@]}"; do
    for p in "${PROMPTS[@]}"; do
        for cfg in "--threads 1" "--threads 2 --batch 8 --split 3" "--threads 2 GENERIC"; do
            env=(SHOAL_CPU_PAR_MIN=1) # every op on every thread, even for these small models
            args=${cfg/ GENERIC/}
            [ "$args" != "$cfg" ] && env+=(SHOAL_CPU_GENERIC=1)
            # shellcheck disable=SC2086
            if ! env "${env[@]}" "$DUMP" "$m" "$TMP/d" -n 160 $args $p; then
                echo "FAIL: llm_dump $m $cfg"; fail=1; continue
            fi
            printf '%s [%s] prompt "%s": ' "$(basename "$m")" "$cfg" "${p:0:20}"
            "$PY" "$HERE/ref.py" "$m" --compare "$TMP/d" --tol 1e-4 || fail=1
        done
    done
    # The same weights through GGUF (shoal convert, f32): the same logits as the .bin.
    if [ -x "${SHOAL:-}" ] && "$SHOAL" convert "$m" "$TMP/m.gguf" >/dev/null 2>&1; then
        printf '%s [gguf f32]: ' "$(basename "$m")"
        "$DUMP" "$TMP/m.gguf" "$TMP/d" -n 160 --threads 2 1 300 400 && "$PY" "$HERE/ref.py" "$m" --compare "$TMP/d" --tol 1e-4 || fail=1
    else
        echo "$(basename "$m") [gguf f32]: skipped (no working 'shoal convert')"
    fi
    # f16 KV cache: close to f32, not bit-level equal
    printf '%s [kv f16]: ' "$(basename "$m")"
    "$DUMP" "$m" "$TMP/d" -n 100 --kv f16 --threads 2 1 300 && "$PY" "$HERE/ref.py" "$m" --compare "$TMP/d" --tol 1e-2 || fail=1
done
exit $fail
