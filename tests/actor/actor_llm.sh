#!/usr/bin/env bash
# An actor frozen mid-conversation (two shoal_llm sessions with KV caches, sampled at temperature 0.8)
# resumes in a new process and produces the identical remainder, wherever it was frozen: after a reply,
# between a prompt's prefill and its first sample (logits pending), mid-reply (a sampled token not fed).
# Models are re-bound by name from the saved preload spec, or by --nn-preload with an identity check.
# Usage: actor_llm.sh
set -u
S=${SHOAL_MODELS:-../shared/models}
M=$S/stories260K/stories260K.bin
O=$S/aidreams260K/aidreams260K.bin
[ -f "$M" ] && [ -f "$O" ] || { echo "SKIP: models not found under $S (stories260K, aidreams260K)"; exit 77; }
W=$SHOAL_GUEST_DIR/actor_chat.wasm
[ -f "$W" ] || { echo "SKIP: guest actor_chat.wasm was not built"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
cp "$M" "$T/model.bin"
cp "$(dirname "$M")/tok512.bin" "$T/" # the tokenizer is found next to a llama2.c model
R=("$SHOAL" run --nn-threads 1 --nn-preload "chat:GGML:CPU:$T/model.bin")

"${R[@]}" "$W" chat turn -1 >"$T/ref" 2>&1 || { cat "$T/ref"; echo "FAIL: the reference run failed"; exit 1; }
grep -q '^session 1: position' "$T/ref" || { cat "$T/ref"; echo "FAIL: the reference run did not finish"; exit 1; }

for case in "turn 0" "turn 2" "prefill 1" "mid 3"; do
    set -- $case
    f="$T/$1$2.act"
    "${R[@]}" --snapshot-on-exit "$f" "$W" chat $1 $2 >"$T/a" 2>&1; rc1=$?
    "$SHOAL" resume --nn-threads 1 "$f" >"$T/b" 2>&1; rc2=$?
    # The joined output, without the freeze/resume lines, must be the reference.
    joined=$(cat "$T/a" "$T/b" | grep -v '^frozen at\|^resumed at' | tr -d '\n')
    want=$(tr -d '\n' <"$T/ref")
    if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && grep -q "^resumed at $1 $2" "$T/b" && [ "$joined" == "$want" ]; then
        ok "frozen at $1 $2, resumed in a new process: identical remainder ($(grep -c '^turn' "$T/b") turns after it)"
    else
        bad "frozen at $1 $2: rc $rc1 $rc2"; cat "$T/a" "$T/b"
    fi
done

# Re-binding: the saved model path is gone; --nn-preload gives the same model elsewhere (identity checked),
# and a different model under the same name is refused.
f="$T/turn2.act"
mv "$T/model.bin" "$T/moved.bin"
"$SHOAL" resume --nn-threads 1 "$f" >"$T/b" 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "chat" "$T/b" && ok "a saved model path that is gone is named ($(head -c 120 "$T/b"))" ||
    { bad "missing model: rc $rc"; cat "$T/b"; }
"$SHOAL" resume --nn-threads 1 --nn-preload "chat:GGML:CPU:$T/moved.bin" "$f" >"$T/b" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q '^session 1: position' "$T/b" && ok "re-bound with --nn-preload to a moved copy" ||
    { bad "re-bind: rc $rc"; cat "$T/b"; }
"$SHOAL" resume --nn-threads 1 --nn-preload "chat:GGML:CPU:$O" "$f" >"$T/b" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -qi "identity\|here but was" "$T/b" && ! grep -q '^turn' "$T/b" &&
    ok "another model under the same name is refused ($(head -c 140 "$T/b"))" || { bad "wrong model: rc $rc"; cat "$T/b"; }

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all actor/LLM checks passed"
