#!/usr/bin/env bash
# Shoal's main job, from a fresh Debian 12 machine: installs what is missing, builds, then
#   1. runs the zero-copy matmul guest: the guest fills matrices in its own linear memory and the device
#      (the GPU where there is one, else the CPU) multiplies them in place;
#   2. where a model is found ($SHOAL_MODEL, a file or folder; else ../shared/models), runs a text-generation
#      guest through wasi_ephemeral_nn, with the model preloaded on the host once;
#      where none is found, says how to get one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -G Ninja >/dev/null
ninja -C build
SHOAL=build/shoal
G=build/guests

device=cpu
if $SHOAL run --device cuda "$G/matmul.wasm" >/dev/null 2>&1; then device=cuda; fi
echo "== zero-copy matmul guest (device: $device) =="
$SHOAL run --device $device "$G/matmul.wasm" 128

find_model() {
  local where=$1
  [ -f "$where" ] && { echo "$where"; return; }
  [ -d "$where" ] || return 0
  [ -f "$where/config.json" ] && { echo "$where"; return; }
  # the largest llama2.c checkpoint or GGUF under the folder
  find "$where" -type f \( -name '*.gguf' -o -name '*.bin' \) ! -name 'tok*.bin' ! -name 'ggml-vocab-*' \
    -printf '%s %p\n' 2>/dev/null | sort -rn | awk 'NR==1 {print $2}'
}
model=""
[ -n "${SHOAL_MODEL:-}" ] && model=$(find_model "$SHOAL_MODEL")
[ -z "$model" ] && model=$(find_model ../shared/models)

if [ -n "$model" ]; then
  echo "== text generation from inside the sandbox: $model =="
  $SHOAL run --nn-preload "default:GGML:AUTO:$model" "$G/complete.wasm" --prompt "Once upon a time" -n 96 --seed 1
  echo
else
  cat <<MSG
No model found (looked at \$SHOAL_MODEL, then ../shared/models). To get one:
  - stories15M (llama2.c, 60 MB): https://huggingface.co/karpathy/tinyllamas/resolve/main/stories15M.bin
    and its tokenizer https://github.com/karpathy/llama2.c/raw/master/tokenizer.bin (same folder)
  - Llama 3.2 1B Instruct as GGUF, e.g. Llama-3.2-1B-Instruct-Q8_0.gguf from
    https://huggingface.co/bartowski/Llama-3.2-1B-Instruct-GGUF
then: SHOAL_MODEL=/path/to/model ./scripts/demo.sh
MSG
fi
