#!/bin/bash
# shoal run --trace: one line per host call with arguments, result, duration and bytes; the summary splits
# the wall time into device, inference host work, wasi, and the boundary (guest code + crossings).
. "$(dirname "$0")/common.sh"
need_guest complete
"$SHOAL" run --trace --nn-threads 1 --nn-preload "default:GGML:CPU:$M" "$SHOAL_GUEST_DIR/complete.wasm" \
    --stream -n 12 --temp 0 > "$TMP/out" 2> "$TMP/err" || { cat "$TMP/err"; exit 1; }
check "12 compute_single calls succeed" 12 "$(grep -c '^\[trace\] wasi_ephemeral_nn.compute_single(0) -> 0 ' "$TMP/err")"
check "the 13th ends the sequence" 1 "$(grep -c '^\[trace\] wasi_ephemeral_nn.compute_single(0) -> 100 ' "$TMP/err")"
check "set_input lines show arguments, time and bytes" 2 \
    "$(grep -cE '^\[trace\] wasi_ephemeral_nn.set_input\(0, [01], [0-9]+\) -> 0  [0-9.]+ ms  [1-9][0-9]* bytes$' "$TMP/err")"
check "fd_write bytes come from nwritten" 1 \
    "$(grep -cE '^\[trace\] wasi_snapshot_preview1.fd_write\(1, [0-9]+, [0-9]+, [0-9]+\) -> 0  [0-9.]+ ms  [1-9]' "$TMP/err" | \
       awk '{print ($1 > 0)}')"
check "summary" 1 "$(grep -c '^\[trace\] summary: wall ' "$TMP/err")"
check "summary: device line" 1 "$(grep -c '^\[trace\]   device (forward passes) ' "$TMP/err")"
check "summary: boundary line" 1 "$(grep -c '^\[trace\]   boundary (guest code + crossings) ' "$TMP/err")"
check "summary: per-function table" 1 "$(grep -cE '^\[trace\]   wasi_ephemeral_nn +compute_single +13 calls' "$TMP/err")"
"$SHOAL" run --trace=summary --nn-preload "default:GGML:CPU:$M" "$SHOAL_GUEST_DIR/complete.wasm" \
    --stream -n 12 --temp 0 > "$TMP/out2" 2> "$TMP/err2"
check "--trace=summary prints no call lines" 0 "$(grep -c '^\[trace\] wasi' "$TMP/err2")"
check "--trace does not change the output" "$(cat "$TMP/out")" "$(cat "$TMP/out2")"
[ $fails -eq 0 ]
