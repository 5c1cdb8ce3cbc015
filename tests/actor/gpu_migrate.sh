#!/usr/bin/env bash
# Actor migration between devices (run on a GPU machine; CI has none, so this is not a CTest test):
# a conversation frozen on the CPU backend resumes on CUDA, and one frozen on CUDA resumes on the CPU;
# with F32 weights and KV the remainder must be token-identical to never stopping.
#   gpu_migrate.sh SHOAL GUEST_DIR MODEL [MODEL...]
# Exit 77 when there is no usable GPU. Prints one line per case.
set -u
SHOAL=$1 GD=$2
G=$GD/actor_chat.wasm
shift 2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
if ! "$SHOAL" run --device cuda "$GD/hello.wasm" >/dev/null 2>"$T/probe"; then
    echo "SKIP: no usable CUDA device: $(head -c 200 "$T/probe")"; exit 77
fi
fails=0
for M in "$@"; do
    name=$(basename "$M")
    cpu=(--nn-threads 4 --nn-preload "chat:GGML:CPU:$M")
    gpu=(--nn-preload "chat:GGML:GPU:$M")
    "$SHOAL" run "${cpu[@]}" "$G" chat turn -1 >"$T/ref_cpu" 2>&1 || { cat "$T/ref_cpu"; exit 1; }
    "$SHOAL" run "${gpu[@]}" "$G" chat turn -1 >"$T/ref_gpu" 2>&1 || { cat "$T/ref_gpu"; exit 1; }
    same_ref=$(cmp -s "$T/ref_cpu" "$T/ref_gpu" && echo yes || echo no)
    echo "$name: uninterrupted CPU and CUDA runs identical: $same_ref"
    for where in "mid 1" "prefill 2" "turn 2"; do
        set -- $where
        for dir in cpu2gpu gpu2cpu; do
            if [ $dir = cpu2gpu ]; then from=("${cpu[@]}"); to=("${gpu[@]}" --device cuda); ref=$T/ref_cpu
            else from=("${gpu[@]}" --device cuda); to=("${cpu[@]}" --device cpu); ref=$T/ref_gpu; fi
            rm -f "$T/a.act"
            "$SHOAL" run "${from[@]}" --snapshot-on-exit "$T/a.act" "$G" chat $1 $2 >"$T/a" 2>&1; rc1=$?
            t0=$(date +%s.%N)
            "$SHOAL" resume "${to[@]}" "$T/a.act" >"$T/b" 2>&1; rc2=$?
            t1=$(date +%s.%N)
            joined=$(cat "$T/a" "$T/b" | grep -v '^frozen at\|^resumed at' | tr -d '\n')
            if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ "$joined" == "$(tr -d '\n' <"$ref")" ]; then
                printf '%s: %-4s at %-8s %s: identical remainder (resume process %.2f s, file %s bytes)\n' \
                    "$name" "$dir" "$1 $2" "ok" "$(awk "BEGIN { print $t1 - $t0 }")" "$(stat -c %s "$T/a.act")"
            else
                echo "$name: $dir at $1 $2: FAIL (rc $rc1 $rc2)"; cat "$T/a" "$T/b" | tail -8
                fails=$((fails + 1))
            fi
        done
    done
done
[ $fails -eq 0 ] && echo "gpu_migrate: all cases identical" || { echo "gpu_migrate: $fails failure(s)"; exit 1; }
