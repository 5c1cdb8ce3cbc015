#!/bin/bash
# Every function, error code and bad pointer/length of wasi_ephemeral_nn (nn_api.wasm) and shoal_llm
# (llm_api.wasm), from real C guests.
. "$(dirname "$0")/common.sh"
need_guest nn_api
"$SHOAL" run --nn-threads 1 --nn-preload "default:GGML:CPU:$M" --nn-preload missing:GGML:AUTO:/nonexistent/model.gguf \
    "$SHOAL_GUEST_DIR/nn_api.wasm" || exit 1
need_guest llm_api
"$SHOAL" run --nn-threads 1 --nn-preload "default:GGML:CPU:$M" --nn-preload missing:GGML:AUTO:/nonexistent/model.gguf \
    "$SHOAL_GUEST_DIR/llm_api.wasm" || exit 1
