#!/usr/bin/env bash
# shoal_llm save/restore from a Wasm guest: files only inside its --dir directory; the restored session
# continues exactly as the original (same process, and a new process); refusals. Usage: guest.sh
set -u
S=${SHOAL_MODELS:-../shared/models}
[ -f "$S/stories260K/stories260K.bin" ] && [ -f "$S/aidreams260K/aidreams260K.bin" ] || { echo "SKIP: models not found"; exit 77; }
W=$SHOAL_GUEST_DIR/snap_guest.wasm
[ -f "$W" ] || { echo "SKIP: guest snap_guest.wasm was not built"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir "$T/d"
R=("$SHOAL" run --nn-threads 1 --nn-preload "default:GGML:CPU:$S/stories260K/stories260K.bin"
   --nn-preload "other:GGML:CPU:$S/aidreams260K/aidreams260K.bin" --dir "$T/d")
"${R[@]}" "$W" all >"$T/all" 2>&1; rc=$?
cat "$T/all"
[ $rc -eq 0 ] || { echo "FAIL: the guest reported failures"; exit 1; }
[ ! -e "$T/x.st" ] || { echo "FAIL: a file was written outside the directory"; exit 1; }
"${R[@]}" "$W" first >"$T/first" 2>&1 || { cat "$T/first"; exit 1; }
"${R[@]}" "$W" second >"$T/second" 2>&1 || { cat "$T/second"; exit 1; }
want=$(sed -n 's/^tokens://p' "$T/all")
got="$(sed -n 's/^tokens://p' "$T/first")$(sed -n 's/^tokens://p' "$T/second")"
[ -n "$want" ] && [ "$want" == "$got" ] || { echo "FAIL: resumed in a new process: $got, expected $want"; exit 1; }
echo "ok   a new process resumes the guest's session: $got"
