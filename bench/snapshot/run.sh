#!/bin/bash
# bench/snapshot/run.sh: KV snapshot save / restore (page cache and cold) against re-prefilling the same
# tokens, for contexts 24, 256, 1024 and 4096 (those each model allows), with the transfer bound beside it
# (see bench_snap.c). Models: the largest trained model in shared/models (stories260K, context 512) and a
# random-weight model of the llama2.c 110M shape (f16 weights, context 1024; made on first use in
# bench/snapshot/models, ignored by git).
#   bench/snapshot/run.sh [--device cpu|cuda] [--threads N] [--reps R] [--quick]
# Needs a build (BUILD=dir, default build) with bench_snap. --quick: stories260K only.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SHOAL=${SHOAL:-$BUILD/shoal}
B=$BUILD/bench/snapshot/bench_snap
MODELS_IN=${SHOAL_MODELS:-$ROOT/../shared/models}
DEVICE=cpu THREADS=2 REPS=3 QUICK=0
while [ $# -gt 0 ]; do
    case $1 in
    --device) DEVICE=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --quick) QUICK=1 ;;
    *) echo "usage: $0 [--device cpu|cuda] [--threads N] [--reps R] [--quick]"; exit 2 ;;
    esac
    shift
done
[ -x "$B" ] || { echo "no $B (build first: ninja -C $BUILD bench_snap)"; exit 1; }
M=$HERE/models
mkdir -p "$M"
echo "## $(date -u '+%Y-%m-%d %H:%M') UTC, $(git -C "$ROOT" rev-parse --short HEAD), $DEVICE, $THREADS threads, $(nproc) cores"
echo
"$B" "$MODELS_IN/stories260K/stories260K.bin" --device "$DEVICE" --threads "$THREADS" --reps "$REPS" 24 256 512 || exit $?
[ "$QUICK" = 1 ] && exit 0
if [ ! -s "$M/r110m-f16.gguf" ]; then
    "$SHOAL" convert --random-shape 110m "$M/r110m-f16.gguf" --type f16 \
        --tokenizer "$MODELS_IN/llama2-tokenizer/tokenizer.bin" >/dev/null
fi
echo
"$B" "$M/r110m-f16.gguf" --device "$DEVICE" --threads "$THREADS" --reps "$REPS" 24 256 1024 4096
if [ "$DEVICE" != cpu ]; then
    # On a GPU the 1B shape (16 layers, 8 KV heads of 64, context up to 4096) is the interesting size.
    if [ ! -s "$M/r1b-f16.gguf" ]; then
        "$SHOAL" convert --random-shape 1b "$M/r1b-f16.gguf" --type f16 \
            --tokenizer "$MODELS_IN/llama3-tokenizer/tokenizer.json" >/dev/null
    fi
    echo
    "$B" "$M/r1b-f16.gguf" --device "$DEVICE" --threads "$THREADS" --reps "$REPS" 24 256 1024 4096
fi
