#!/usr/bin/env bash
# Run HERE (no GPU needed): builds Shoal with the CUDA backend and fills .devcarry/ with what the GPU
# machine needs (binaries, the libraries they link that the GPU image lacks, guests, the small models).
# Then, with the device tool: run `bash bench/cuda/run.sh` carrying .devcarry.
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build-gpu -G Ninja >/dev/null
ninja -C build-gpu shoal_cli check_logits bench_llm guests bench_snap snap_migrate
C=${SHOAL_CARRY:-.devcarry}
rm -rf $C && mkdir -p $C/lib $C/guests $C/models
cp build-gpu/shoal build-gpu/bench/cuda/check_logits build-gpu/bench/cuda/bench_llm $C/
cp build-gpu/bench/snapshot/bench_snap build-gpu/tests/snapshot/snap_migrate $C/
cp build-gpu/guests/*.wasm $C/guests/
for lib in libcjson.so.1 libpcre2-8.so.0 libnettle.so.8 libxxhash.so.0; do cp -L /lib/x86_64-linux-gnu/$lib $C/lib/; done
models=${SHOAL_MODELS:-../shared/models}
for m in stories260K aidreams260K; do [ -d "$models/$m" ] && cp -r "$models/$m" $C/models/; done
# The Llama 3 tokenizer goes with the random 1B-shaped model (same vocabulary size, 128256).
[ -f "$models/llama3-tokenizer/tokenizer.json" ] && cp "$models/llama3-tokenizer/tokenizer.json" $C/llama3-tokenizer.json
# The Llama 2 tokenizer goes with the random 110M-shaped model of the snapshot benchmark.
[ -f "$models/llama2-tokenizer/tokenizer.bin" ] && cp "$models/llama2-tokenizer/tokenizer.bin" $C/llama2-tokenizer.bin
cp bench/cuda/run.sh bench/cuda/make_model.py bench/cuda/torch_peer.py tests/snapshot/migrate.sh $C/
du -sh $C
