#!/bin/bash
# bench/guest: decode tokens/s of the example guests (wasi_ephemeral_nn: complete, complete --stream, chat;
# shoal_llm: sample --host) against `shoal generate` on the same model in the same run, and the share of
# time at the boundary from `shoal run --trace=summary`.
#
#   bench/guest/run.sh [--build DIR] [--model PATH] [--device cpu|cuda] [--runs N] [-n TOKENS] [--threads T]
#                      [--ctx N]   (a context length for models whose own is huge, e.g. 131072)
#
# Every variant generates the same tokens (greedy; the parity test proves the paths agree), runs are
# interleaved (generate, then each guest, repeated) so that machine noise hits all alike, and the median of
# the runs is reported. Two measures: wall-clock decode tok/s as each program reports it (what a user sees;
# noisy on a shared machine), and CPU-time tok/s: (N - N/8) / (CPU of a run of N tokens - CPU of a run of
# N/8 tokens), which cancels start-up and prefill and hardly moves under load (on a GPU it counts the host
# thread's time, which includes waiting for the device).
# Defaults: build/, ../shared/models/stories260K, cpu, 9 runs, 400 tokens, 1 thread.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build
model=$root/../shared/models/stories260K/stories260K.bin
device=cpu
runs=9
ntok=400
threads=1
ctx=
while [ $# -gt 0 ]; do
    case $1 in
    --build) build=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    -n) ntok=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --ctx) ctx=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--model PATH] [--device cpu|cuda] [--runs N] [-n TOKENS] [--threads T]" >&2
       exit 2 ;;
    esac
done
shoal=$build/shoal
guests=$build/guests
for f in "$shoal" "$model" "$guests/complete.wasm" "$guests/chat.wasm" "$guests/sample.wasm"; do
    [ -e "$f" ] || { echo "bench/guest: $f is missing (build first: ninja -C build)" >&2; exit 1; }
done
case $device in
cpu) target=CPU ;;
cuda*) target=GPU ;;
*) echo "bench/guest: --device cpu or cuda" >&2; exit 2 ;;
esac
prompt="Once upon a time"
# What the chat guest sends (its plain template around $prompt): `shoal generate` on it is the chat's baseline.
chat_prompt="User: $prompt
Assistant:"
gctx=() nctx=()
if [ -n "$ctx" ]; then gctx=(--ctx "$ctx"); nctx=(--ctx "$ctx"); fi
pre=(--nn-threads "$threads" --nn-preload "default:GGML:$target:$model")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

rate() { grep -o 'decode [0-9.]* tok/s' | tail -1 | awk '{print $2}'; }
# CPU time of each whole run (user + system of the processes it started, from the shell's `times`): unlike
# wall-clock tok/s it barely moves when other jobs share the machine. It includes loading the model and the
# module; the long-minus-short difference below cancels that.
# `times` must run in this shell (not in a $(...) subshell, whose children are not ours).
cpu_of() { # the CPU seconds of all waited-for children in a `times` output file (its second line)
    tail -1 "$1" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } print t }'
}
measure() { # NAME TOKENS -> appends one tok/s to $tmp/NAME.TOKENS and the process CPU ms to $tmp/NAME.TOKENS.cpu
    local name=$1 ntok=$2 r
    times > "$tmp/times0"
    case $name in
    generate) r=$("$shoal" generate -m "$model" --device "$device" -t "$threads" -p "$prompt" -n "$ntok" --temp 0 \
                  "${gctx[@]}" 2>&1 >/dev/null | rate) ;;
    generate-chat) r=$("$shoal" generate -m "$model" --device "$device" -t "$threads" -p "$chat_prompt" -n "$ntok" \
                  --temp 0 "${gctx[@]}" 2>&1 >/dev/null | rate) ;;
    complete) r=$("$shoal" run "${pre[@]}" "$guests/complete.wasm" --prompt "$prompt" -n "$ntok" --temp 0 \
                  "${nctx[@]}" --timings 2>&1 >/dev/null | rate) ;;
    complete-stream) r=$("$shoal" run "${pre[@]}" "$guests/complete.wasm" --stream --prompt "$prompt" -n "$ntok" \
                  --temp 0 "${nctx[@]}" --timings 2>&1 >/dev/null | rate) ;;
    chat) r=$(echo "$prompt" | "$shoal" run "${pre[@]}" "$guests/chat.wasm" --template plain -n "$ntok" --temp 0 \
                  "${nctx[@]}" --timings 2>&1 >/dev/null | rate) ;;
    sample-host) r=$("$shoal" run "${pre[@]}" "$guests/sample.wasm" --host --prompt "$prompt" -n "$ntok" --temp 0 \
                  "${nctx[@]}" --timings 2>&1 >/dev/null | rate) ;;
    esac
    times > "$tmp/times1"
    echo "${r:-0}" >> "$tmp/$name.$ntok"
    awk -v a="$(cpu_of "$tmp/times0")" -v b="$(cpu_of "$tmp/times1")" 'BEGIN { print 1000 * (b - a) }' \
        >> "$tmp/$name.$ntok.cpu"
}
median() { [ -s "$tmp/$1" ] || { echo 0; return; }; sort -g "$tmp/$1" | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

variants=(generate complete complete-stream sample-host generate-chat chat)
short=$((ntok / 8))
for ((i = 1; i <= runs; i++)); do
    for v in "${variants[@]}"; do
        measure "$v" "$ntok"
        measure "$v" "$short"
        # CPU time per decoded token: the difference of a long and a short run cancels start-up and prefill
        paste <(tail -1 "$tmp/$v.$ntok.cpu") <(tail -1 "$tmp/$v.$short.cpu") |
            awk -v n=$((ntok - short)) '{ d = ($1 - $2) / n; print (d > 0 ? 1000 / d : 0) }' >> "$tmp/$v.cpurate"
    done
    printf '.' >&2
done
echo >&2

info=$("$shoal" generate -m "$model" --device "$device" -t "$threads" -p "$prompt" -n 1 --temp 0 "${gctx[@]}" 2>&1 >/dev/null | \
       grep -o 'backend [^,]*' | head -1)
base=$(median generate.$ntok)
echo "model $(basename "$model"), device $device ($info), $ntok tokens greedy, $threads thread(s), median of $runs runs"
echo
cbase=$(median generate.cpurate)
echo "| variant | path | decode tok/s, wall (median) | vs shoal generate | decode tok/s, CPU time (median) | vs shoal generate | wall tok/s of all runs |"
echo "| --- | --- | ---: | ---: | ---: | ---: | --- |"
for v in "${variants[@]}"; do
    m=$(median "$v.$ntok")
    case $v in
    generate) path="host only (shoal generate)" ;;
    complete) path="wasi_ephemeral_nn compute (one call)" ;;
    complete-stream) path="wasi_ephemeral_nn compute_single + get_output_single per token" ;;
    chat) path="chat guest: compute_single per token, one turn (vs generate-chat)" ;;
    generate-chat) path="shoal generate on the chat's rendered prompt" ;;
    sample-host) path="shoal_llm step per token" ;;
    esac
    b=$base cb=$cbase
    if [ "$v" = chat ]; then b=$(median generate-chat.$ntok); cb=$(median generate-chat.cpurate); fi
    rel=$(awk -v m="$m" -v b="$b" 'BEGIN { printf (b > 0 ? "%+.2f%%" : "n/a"), 100 * (m - b) / b }')
    c=$(median "$v.cpurate")
    crel=$(awk -v m="$c" -v b="$cb" 'BEGIN { printf (b > 0 ? "%+.2f%%" : "n/a"), 100 * (m - b) / b }')
    echo "| $v | $path | $m | $rel | $c | $crel | $(sort -g "$tmp/$v.$ntok" | tr '\n' ' ')|"
done

echo
echo "Boundary share from \`shoal run --trace=summary\` (one run each):"
echo
for v in complete complete-stream chat sample-host; do
    case $v in
    complete) out=$("$shoal" run --trace=summary "${pre[@]}" "$guests/complete.wasm" --prompt "$prompt" -n "$ntok" \
                    --temp 0 "${nctx[@]}" 2>&1 >/dev/null) ;;
    complete-stream) out=$("$shoal" run --trace=summary "${pre[@]}" "$guests/complete.wasm" --stream \
                    --prompt "$prompt" -n "$ntok" --temp 0 "${nctx[@]}" 2>&1 >/dev/null) ;;
    chat) out=$(echo "$prompt" | "$shoal" run --trace=summary "${pre[@]}" "$guests/chat.wasm" --template plain \
                    -n "$ntok" --temp 0 "${nctx[@]}" 2>&1 >/dev/null) ;;
    sample-host) out=$("$shoal" run --trace=summary "${pre[@]}" "$guests/sample.wasm" --host --prompt "$prompt" \
                    -n "$ntok" --temp 0 "${nctx[@]}" 2>&1 >/dev/null) ;;
    esac
    echo "- $v: $(echo "$out" | grep -E 'summary|device|boundary' | sed 's/^\[trace\] *//' | tr -s ' ' | paste -sd ';')"
done
