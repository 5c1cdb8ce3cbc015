#!/bin/bash
# `shoal generate` end to end: greedy text equals the numpy reference's tokens (decoded independently here),
# only generated text on stdout, a timings line last on stderr, seeded sampling reproducible, chat mode,
# GGUF q8_0 models, and the error paths (exit status and message).
set -u
PY=""
for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null && "$p" -c "import numpy" 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "SKIP: no python3 with numpy"; exit 77; }
DIR=${SHOAL_MODELS:-/nonexistent}/stories260K
[ -f "$DIR/stories260K.bin" ] || { echo "SKIP: no $DIR/stories260K.bin"; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }

# Greedy, from BOS: text must equal the reference's tokens decoded with tok512.bin.
"$SHOAL" generate --model "$DIR/stories260K.bin" --prompt-ids 1 -n 80 --temp 0 >"$TMP/out" 2>"$TMP/err"
check "greedy run exits 0" '[ $? = 0 ]'
"$PY" "$HERE/ref.py" "$DIR/stories260K.bin" --prompt 1 -n 80 >"$TMP/ref_ids"
"$PY" - "$DIR/tok512.bin" "$TMP/ref_ids" >"$TMP/ref_text" <<'PYEOF'
import struct, sys
b = open(sys.argv[1], "rb").read()
off, pieces = 4, []
while off < len(b):
    _, n = struct.unpack("<fi", b[off:off + 8]); off += 8
    pieces.append(b[off:off + n]); off += n
ids = [int(t) for t in open(sys.argv[2]).read().split()]
out, prev = b"", 1
for t in ids:
    p = pieces[t]
    if prev == 1 and p.startswith(b" "):
        p = p[1:]
    if p.startswith(b"<0x") and p.endswith(b">") and len(p) == 6:
        p = bytes([int(p[3:5], 16)])
    out += p
    prev = t
sys.stdout.buffer.write(out + b"\n")
PYEOF
check "greedy text equals the numpy reference" 'cmp -s "$TMP/out" "$TMP/ref_text"'
check "stderr ends with the timings line" 'tail -1 "$TMP/err" | grep -Eq "^timings: .*prompt 1 tokens, prefill [0-9.]+ tok/s, decode [0-9.]+ tok/s \(80 tokens\)"'
cat "$TMP/err"

# A text prompt through the tokenizer found next to the model (tok512.bin).
"$SHOAL" generate --model "$DIR/stories260K.bin" --prompt "Once upon a time" -n 30 --temp 0 >"$TMP/out" 2>"$TMP/err"
check "text prompt continues the story" 'grep -q "there was" "$TMP/out"'
check "the prompt is not echoed" '! grep -q "Once upon" "$TMP/out"'

# Seeded sampling is reproducible.
for s in 1 1 2; do
    "$SHOAL" generate --model "$DIR/stories260K.bin" --prompt "The dog" -n 40 --temp 1 --top-k 40 --top-p 0.9 \
        --seed $s --threads 2 --kv f16 >"$TMP/seed$s.$RANDOM" 2>/dev/null
done
a=$(ls "$TMP"/seed1.* | head -1); b=$(ls "$TMP"/seed1.* | tail -1); c=$(ls "$TMP"/seed2.*)
check "same seed, same text" 'cmp -s "$a" "$b"'
check "other seed, other text" '! cmp -s "$a" "$c"'

# Chat: one line per user message, one reply line each.
printf 'Hello\nTell me a story\n' | "$SHOAL" generate --model "$DIR/stories260K.bin" --chat -n 20 --temp 0 >"$TMP/chat" 2>"$TMP/err"
check "chat answers each line" '[ $? = 0 ] && [ $(wc -l <"$TMP/chat") -ge 2 ]'

# GGUF q8_0 (written by shoal convert) generates the same story start as f32 for a few tokens.
if "$SHOAL" convert "$DIR/stories260K.bin" "$TMP/q8.gguf" --type q8_0 --tokenizer "$DIR/tok512.bin" >/dev/null 2>&1; then
    "$SHOAL" generate --model "$TMP/q8.gguf" --prompt "Once upon a time" -n 8 --temp 0 >"$TMP/q8" 2>"$TMP/err"
    check "q8_0 GGUF generates" 'grep -q "there was" "$TMP/q8"'
fi

# Errors: exit status and a message naming the problem.
"$SHOAL" generate --model "$TMP/missing.bin" --prompt x >/dev/null 2>"$TMP/err"
check "missing model: exit 1 and message" '[ $? = 1 ] && grep -q "missing.bin: cannot open" "$TMP/err"'
head -c 1000 "$DIR/stories260K.bin" >"$TMP/trunc.bin"
"$SHOAL" generate --model "$TMP/trunc.bin" --prompt-ids 1 >/dev/null 2>"$TMP/err"
check "truncated model: message" '[ $? = 1 ] && grep -q "truncated llama2.c checkpoint" "$TMP/err"'
cat "$TMP/err"
"$SHOAL" generate --model "$DIR/stories260K.bin" --prompt-ids 1,99999 >/dev/null 2>"$TMP/err"
check "token out of range: message" '[ $? = 1 ] && grep -q "out of range" "$TMP/err"'
"$SHOAL" generate --model "$DIR/stories260K.bin" --prompt x --chat >/dev/null 2>&1
check "--prompt with --chat is a usage error" '[ $? = 2 ]'
"$SHOAL" generate --model "$DIR/stories260K.bin" --kv q4 >/dev/null 2>&1
check "bad --kv is a usage error" '[ $? = 2 ]'
"$SHOAL" generate --model "$DIR/stories260K.bin" --prompt-ids 1 --ctx 4 -n 10 --temp 0 >/dev/null 2>"$TMP/err"
check "generation stops at the context end" '[ $? = 0 ]'
exit $fail
