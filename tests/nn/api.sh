#!/bin/bash
# Every function, error code and bad pointer/length of wasi_ephemeral_nn (nn_api.wasm) and shoal_llm
# (llm_api.wasm), from real C guests.
. "$(dirname "$0")/common.sh"
need_guest nn_api
"$SHOAL" run --nn-threads 1 --nn-preload "default:GGML:CPU:$M" --nn-preload missing:GGML:AUTO:/nonexistent/model.gguf \
    "$SHOAL_GUEST_DIR/nn_api.wasm" > "$TMP/nn_api.out" 2> "$TMP/nn_api.err" || { cat "$TMP/nn_api.out"; exit 1; }
check "enable-log: failures go to stderr" 1 "$(grep -c '^\[wasi-nn\] get_output: index 7 ' "$TMP/nn_api.err")"
check "enable-log false: silent" 0 "$(grep -c 'index 8' "$TMP/nn_api.err")"
grep -v '^STREAM<\|^TEXT<' "$TMP/nn_api.out"
streamed=$(sed -n 's/^STREAM<\(.*\)>STREAM$/\1/p' "$TMP/nn_api.out")
text=$(sed -n 's/^TEXT<\(.*\)>TEXT$/\1/p' "$TMP/nn_api.out")
check "stream-stdout: the host printed output 0 while computing" "$text" "$streamed"
check "stream-stdout: not empty" 1 "$([ -n "$text" ] && echo 1)"
need_guest llm_api
"$SHOAL" run --nn-threads 1 --nn-preload "default:GGML:CPU:$M" --nn-preload missing:GGML:AUTO:/nonexistent/model.gguf \
    "$SHOAL_GUEST_DIR/llm_api.wasm" || exit 1
# A guest without memory.
if command -v wat2wasm >/dev/null; then
    wat2wasm "$(dirname "$0")/nomem.wat" -o "$TMP/nomem.wasm" || exit 1
    "$SHOAL" run --nn-preload "default:GGML:CPU:$M" "$TMP/nomem.wasm"
    check "no memory: MissingMemory / EBOUNDS" 0 $?
else
    echo "note: wat2wasm (wabt) is absent: the no-memory guest is not run"
fi
# --nn-preload specs that are wrong stop `shoal run` with a message; a missing path is accepted (103 later).
for spec in "default" "default:GGML:CPU" "default:ONNX:CPU:$M" "default:GGML:TPU:$M" ":GGML:CPU:$M" \
    "default:GGML:CPU:$SHOAL_SOURCE_DIR/CMakeLists.txt"; do
    "$SHOAL" run --nn-preload "$spec" "$SHOAL_GUEST_DIR/complete.wasm" > /dev/null 2> "$TMP/err"
    rc=$?
    check "--nn-preload '$spec' is refused" "1 yes" "$rc $(grep -q 'nn-preload' "$TMP/err" && echo yes)"
done
"$SHOAL" run --nn-preload "a:GGML:CPU:$M" --nn-preload "a:GGML:CPU:$M" "$SHOAL_GUEST_DIR/complete.wasm" \
    > /dev/null 2> "$TMP/err"
check "a name preloaded twice is refused" "1" "$?"
"$SHOAL" run --nn-preload default:ggml:auto:/nonexistent/x.gguf "$SHOAL_GUEST_DIR/complete.wasm" > /dev/null 2> "$TMP/err"
check "a missing path is accepted; the guest gets 103" "1 yes" "$? $(grep -q 'errno 103' "$TMP/err" && echo yes)"
[ $fails -eq 0 ]
