#!/usr/bin/env bash
# shoal generate --save-session / --load-session: stopping, saving and resuming in a new process gives the
# same text as never stopping (greedy and seeded sampling, f32 and f16 KV); the file opens in a plain numpy
# safetensors reader; refusals print a clear error and exit non-zero.
set -u
M=${SHOAL_MODELS:-../shared/models}/stories260K
[ -f "$M/stories260K.bin" ] || { echo "SKIP: $M/stories260K.bin not found"; exit 77; }
PY=""
for p in /usr/bin/python3 python3; do
  command -v "$p" >/dev/null && "$p" -c "import numpy" 2>/dev/null && { PY=$p; break; }
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
G=("$SHOAL" generate -m "$M/stories260K.bin" --tokenizer "$M/tok512.bin" -t 1)
fail=0
check() { # name, expected, got (an empty expectation is a failure: the run itself broke)
  [ -n "$2" ] || { echo "FAIL: $1: no output"; fail=1; return; }
  if [ "$2" == "$3" ]; then echo "ok: $1"; else echo "FAIL: $1"; echo "  want: $2"; echo "  got:  $3"; fail=1; fi
}
for opts in "--temp 0" "--temp 0.9 --seed 42 --repeat-penalty 1.1" "--temp 0 --kv f16" "--temp 1 --seed 7 --kv f16"; do
  # shellcheck disable=SC2086
  full=$("${G[@]}" -p "Once upon a time" -n 60 $opts 2>/dev/null)
  # shellcheck disable=SC2086
  a=$("${G[@]}" -p "Once upon a time" -n 25 $opts --save-session "$T/s.st" 2>"$T/err") || { cat "$T/err"; fail=1; }
  kv=""; case "$opts" in *f16*) kv="--kv f16";; esac
  # Sampling options come from the snapshot (only the KV type is given again).
  # shellcheck disable=SC2086
  b=$("${G[@]}" -n 35 $kv --load-session "$T/s.st" 2>"$T/err") || { cat "$T/err"; fail=1; }
  check "resume ($opts)" "$full" "$a$b"
  # A second stop and resume in the same run of tokens.
  # shellcheck disable=SC2086
  b1=$("${G[@]}" -n 10 $kv --load-session "$T/s.st" --save-session "$T/s2.st" 2>/dev/null)
  # shellcheck disable=SC2086
  b2=$("${G[@]}" -n 25 $kv --load-session "$T/s2.st" 2>/dev/null)
  check "resume twice ($opts)" "$full" "$a$b1$b2"
done
# A prompt after a restore is appended to the snapshot's history; the same as one run over both.
"${G[@]}" --prompt-ids 1,403,407 -n 0 --temp 0 --save-session "$T/p.st" >/dev/null 2>&1
want=$("${G[@]}" --prompt-ids 1,403,407,261,378 -n 20 --temp 0 2>/dev/null)
got=$("${G[@]}" --prompt-ids 261,378 -n 20 --temp 0 --load-session "$T/p.st" 2>/dev/null)
check "prompt after restore" "$want" "$got"
# -n 0 saved the logits: continuing with nothing new uses them.
want=$("${G[@]}" --prompt-ids 1,403,407 -n 20 --temp 0 2>/dev/null)
got=$("${G[@]}" -n 20 --temp 0 --load-session "$T/p.st" 2>/dev/null)
check "continue from saved logits" "$want" "$got"

if [ -n "$PY" ]; then
  if "$PY" "$SHOAL_SOURCE_DIR/tests/snapshot/st_read.py" "$T/s.st" 1; then echo "ok: numpy reader"; else fail=1; fi
  if "$PY" "$SHOAL_SOURCE_DIR/tests/snapshot/st_read.py" "$T/p.st" 1,403,407; then echo "ok: numpy reader (logits)"; else fail=1; fi
else
  echo "note: no python3 with numpy; the foreign-reader check is skipped"
fi

refuse() { # name, expected message part, args...
  local name=$1 msg=$2; shift 2
  if out=$("${G[@]}" "$@" 2>&1 >/dev/null); then echo "FAIL: $name was accepted"; fail=1;
  elif grep -q -- "$msg" <<<"$out"; then echo "ok: refuses $name"; else echo "FAIL: $name: $out"; fail=1; fi
}
refuse "another model" "snapshot of another model" -n 5 --load-session "$T/s.st" -m "${SHOAL_MODELS:-../shared/models}/aidreams260K/aidreams260K.bin" --tokenizer "${SHOAL_MODELS:-../shared/models}/aidreams260K/tok512.bin"
refuse "another dtype" "KV dtype is F32, this session's is F16" -n 5 --kv f16 --load-session "$T/p.st"
refuse "a short context" "context is only 2" -n 5 --ctx 2 --load-session "$T/p.st"
head -c 1000 "$T/s.st" >"$T/cut.st"
refuse "a truncated file" "truncated" -n 5 --load-session "$T/cut.st"
cp "$T/s.st" "$T/bad.st"; printf '\x55' | dd of="$T/bad.st" bs=1 seek=$(( $(stat -c %s "$T/s.st") - 3 )) conv=notrunc 2>/dev/null
refuse "a corrupt file" "checksum" -n 5 --load-session "$T/bad.st"
exit $fail
