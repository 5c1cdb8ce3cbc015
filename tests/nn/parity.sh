#!/bin/bash
# The guest path produces exactly the tokens of `shoal generate` with the same options: wasi_ephemeral_nn
# compute and compute_single (complete.wasm) and shoal_llm host sampling (sample.wasm --host), for several
# seeds, sampler settings, both models, and a context that fills up. SHOAL_NN_DEVICE=cuda runs the same on
# the GPU (generate --device cuda, models preloaded with target GPU).
. "$(dirname "$0")/common.sh"
DEV=${SHOAL_NN_DEVICE:-cpu}
case $DEV in cpu) TGT=CPU ;; *) TGT=GPU ;; esac
need_guest complete sample
run_case() { # NAME MODEL PROMPT GENERATE-ARGS...
    local name=$1 model=$2 prompt=$3
    shift 3
    local want got
    want=$("$SHOAL" generate -m "$model" --device "$DEV" -t 1 -p "$prompt" "$@" 2>/dev/null)
    got=$("$SHOAL" run --nn-threads 1 --nn-preload "default:GGML:$TGT:$model" "$SHOAL_GUEST_DIR/complete.wasm" \
        --prompt "$prompt" "$@")
    check "$name: compute == generate" "$want" "$got"
    got=$("$SHOAL" run --nn-threads 1 --nn-preload "default:GGML:$TGT:$model" "$SHOAL_GUEST_DIR/complete.wasm" \
        --stream --prompt "$prompt" "$@")
    check "$name: compute_single == generate" "$want" "$got"
    got=$("$SHOAL" run --nn-threads 1 --nn-preload "default:GGML:$TGT:$model" "$SHOAL_GUEST_DIR/sample.wasm" \
        --host --prompt "$prompt" "$@")
    check "$name: shoal_llm step == generate" "$want" "$got"
}
S="--temp 0.8 --top-k 40 --top-p 0.95 --min-p 0.05 --repeat-penalty 1 --repeat-last-n 64"
run_case "greedy" "$M" "Once upon a time" -n 60 --temp 0 --seed 1
run_case "seed 7" "$M" "Once upon a time" -n 60 $S --seed 7
run_case "seed 12345 penalty" "$M" "The cat sat" -n 80 --temp 1.0 --top-k 0 --top-p 1 --min-p 0 \
    --repeat-penalty 1.3 --repeat-last-n 32 --seed 12345
run_case "aidreams" "$M2" "Lily liked" -n 50 $S --seed 3
run_case "context fills" "$M2" "Lily liked" -n 400 $S --seed 5 --ctx 48
# The chat guest (plain template, one turn) == `shoal generate` on the prompt the guest renders.
for args in "--temp 0" "--temp 0.8 --seed 9"; do
    # shellcheck disable=SC2086
    want=$("$SHOAL" generate -m "$M" --device "$DEV" -t 1 -p "User: Tom had a dog
Assistant:" -n 60 $args 2>/dev/null)
    # shellcheck disable=SC2086
    got=$(echo "Tom had a dog" | "$SHOAL" run --nn-preload "default:GGML:$TGT:$M" "$SHOAL_GUEST_DIR/chat.wasm" \
        --template plain -n 60 $args)
    check "chat [$args] == generate on its rendered prompt" "$want" "$got"
done
# Sampling in the guest from logits written into its memory: greedy must pick what the host's greedy does.
want=$("$SHOAL" generate -m "$M" --device "$DEV" -t 1 -p "Once upon a time" -n 80 --temp 0 2>/dev/null)
got=$("$SHOAL" run --nn-preload "default:GGML:$TGT:$M" "$SHOAL_GUEST_DIR/sample.wasm" --prompt "Once upon a time" \
    -n 80 --temp 0)
check "guest sampling from guest-memory logits (greedy) == generate" "$want" "$got"
[ $fails -eq 0 ]
