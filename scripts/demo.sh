#!/usr/bin/env bash
# Shoal's main job: builds everything, runs guests, and generates text where a model is found.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -G Ninja >/dev/null
ninja -C build
SHOAL=build/shoal
G=build/guests

echo "== a WebAssembly guest =="
$SHOAL run "$G/hello.wasm" from-the-demo

models=${SHOAL_MODEL:-../shared/models}
model=""
if [ -f "$models" ]; then model=$models
elif [ -d "$models" ]; then model=$(find "$models" -name 'stories260K.bin' -o -name '*.gguf' -path '*stories*' | head -n1)
fi
if [ -n "$model" ] && [ -f "$model" ]; then
  echo "== text generation: $model =="
  tok=""
  [ -f "$(dirname "$model")/tok512.bin" ] && tok="--tokenizer $(dirname "$model")/tok512.bin"
  $SHOAL generate --model "$model" $tok --prompt "Once upon a time" -n 64 --temp 0
else
  cat <<MSG
No model found (looked at \$SHOAL_MODEL, then ../shared/models). To get one:
  mkdir -p ../shared/models/stories15M && cd ../shared/models/stories15M
  wget https://huggingface.co/karpathy/tinyllamas/resolve/main/stories15M.bin
  wget https://github.com/karpathy/llama2.c/raw/master/tokenizer.bin
or a Llama 3.2 1B GGUF (e.g. from huggingface.co/bartowski/Llama-3.2-1B-Instruct-GGUF), then
  SHOAL_MODEL=path/to/model ./scripts/demo.sh
MSG
fi
