#!/usr/bin/env bash
# The GPU runs that belong together, for the device machine (after bench/cuda/prepare.sh here):
#   zero-copy benchmark and tensor ops in every CUDA memory mode; a random Llama-3.2-1B-shaped model;
#   logits against PyTorch (BF16 and F32); greedy CPU vs CUDA on the trained models; decode/prefill speed
#   (BF16, Q8_0, Q4_0) with bandwidth fractions; PyTorch as the peer; KV snapshot save/restore against
#   re-prefill with the transfer bound (snap); sessions moved CPU <-> CUDA through a snapshot (migrate).
# Usage: bash bench/cuda/run.sh [stages...]
#   stages: zc model check greedy speed peer snap migrate (default: all); snap, check and migrate need model.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
C=${SHOAL_CARRY:-$(pwd)/.devcarry} # run from the repository root, where the device tool starts
export LD_LIBRARY_PATH=$C/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
S=$C/shoal
M=${MODEL_DIR:-/tmp/shoal-m1b}
stages=${*:-zc model check greedy speed peer snap migrate}
has() { [[ " $stages " == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
t0=$(date +%s)
stamp() { echo "--- [$(( $(date +%s) - t0 )) s] $*"; }

if has zc; then
  stamp "zero-copy benchmark"
  $S bench zerocopy --device cuda --reps 7 --guest $C/guests/zc_bench.wasm
  stamp "tensor ops in every CUDA memory mode (checksums must agree)"
  for mode in mapped unified copy; do
    $S run --device cuda --memory $mode $C/guests/tensor_ops.wasm | grep -E "^(FAIL|device|checksum)|checks"
  done
  $S run --device cuda $C/guests/matmul.wasm
fi

if has model; then
  stamp "random Llama-3.2-1B-shaped model (PyTorch)"
  [ -f $M/model.safetensors ] || python3 $HERE/make_model.py $M || exit 1
  [ -f $C/llama3-tokenizer.json ] && cp $C/llama3-tokenizer.json $M/tokenizer.json
  for t in ${CONVERT_TYPES:-f32 q8_0 q4_0}; do
    [ -f $M-$t.gguf ] || $S convert $M $M-$t.gguf --type $t >/dev/null || echo "convert $t failed"
  done
  ls -la $M $M-*.gguf
fi

if has check; then
  stamp "logits vs PyTorch"
  $C/check_logits $M $M/tokens.txt $M/ref_logits_bfloat16.npy 2e-2 --device cuda --kv f32
  $C/check_logits $M $M/tokens.txt $M/ref_logits_bfloat16.npy 2e-2 --device cuda --kv f16
  $C/check_logits $M-f32.gguf $M/tokens.txt $M/ref_logits_float32.npy 1e-4 --device cuda --kv f32
  stamp "bf16 weights, f32 activations (ours) vs PyTorch f32 on the same (exactly upcast) weights"
  $C/check_logits $M $M/tokens.txt $M/ref_logits_float32.npy 1e-4 --device cuda --kv f32
  stamp "the CPU backend on the same f32 model (prefill path): validates loader and reference"
  $C/check_logits $M-f32.gguf $M/tokens.txt $M/ref_logits_float32.npy 1e-4 --device cpu --prefill-only
  stamp "CUDA vs CPU logits on the trained models"
  for m in $C/models/*260K/; do
    bin=$(ls $m*.bin | grep -v tok | head -1)
    $C/check_logits $bin random:200 cpu 1e-4 --device cuda --kv f32
  done
fi

if has greedy; then
  stamp "greedy decoding: CPU vs CUDA, trained models, 128 tokens"
  for m in $C/models/*260K/; do
    bin=$(ls $m*.bin | grep -v tok | head -1); tok=$m/tok512.bin
    for p in "Once upon a time" "The little dog" "Lily wanted"; do
      a=$($S generate --model $bin --tokenizer $tok --prompt "$p" -n 128 --temp 0 --ignore-eos --device cpu 2>/dev/null)
      b=$($S generate --model $bin --tokenizer $tok --prompt "$p" -n 128 --temp 0 --ignore-eos --device cuda 2>/dev/null)
      [ -n "$a" ] && [ "$a" == "$b" ] && echo "identical: $(basename $bin) '$p'" || echo "DIFFER: $(basename $bin) '$p'"
    done
  done
fi

if has speed; then
  stamp "decode/prefill speed"
  for f in $M $M-q8_0.gguf $M-q4_0.gguf; do
    [ -e $f ] && $C/bench_llm $f --device cuda --kv f16
  done
fi

if has profile; then
  stamp "profile: kernels of 8 decode steps (ncu)"
  SHOAL_CUDA_STATS=1 $C/bench_llm $M --device cuda --kv f16 --contexts 128 --decode 64 --prefill 0
  if command -v ncu >/dev/null; then
    # one decode step's kernels (after warm-up), with duration and DRAM throughput each
    timeout 240 ncu --graph-profiling node --launch-skip 800 --launch-count 185 \
      --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed \
      --csv $C/bench_llm $M --device cuda --kv f16 --contexts 128 --decode 8 --prefill 0 > /tmp/ncu.csv 2>/dev/null
    python3 - <<'PY'
import csv, collections
rows = [r for r in csv.reader(open("/tmp/ncu.csv")) if len(r) > 10]
hdr = rows[0]; rows = rows[1:]
ki, mi, vi = hdr.index("Kernel Name"), hdr.index("Metric Name"), hdr.index("Metric Value")
agg = collections.defaultdict(lambda: collections.defaultdict(float)); cnt = collections.Counter()
for r in rows:
    name = r[ki].split("(")[0][:40]
    try: v = float(r[vi].replace(",", ""))
    except ValueError: continue
    agg[name][r[mi]] += v
    if r[mi] == "gpu__time_duration.sum": cnt[name] += 1
tot = sum(a["gpu__time_duration.sum"] for a in agg.values())
print(f"{'kernel':42s} {'n':>4s} {'total us':>9s} {'avg us':>8s} {'GB/s':>7s}")
for k, a in sorted(agg.items(), key=lambda kv: -kv[1]["gpu__time_duration.sum"]):
    t = a["gpu__time_duration.sum"] / 1e3
    print(f"{k:42s} {cnt[k]:4d} {t:9.1f} {t/max(cnt[k],1):8.2f} {a['dram__bytes_read.sum']/max(a['gpu__time_duration.sum'],1):7.0f}")
print(f"sum of kernel time: {tot/1e3:.1f} us over {sum(cnt.values())} kernels")
PY
  fi
fi

if has snap; then
  stamp "KV snapshots: save, restore (page cache, cold), re-prefill, transfer bound (bench_snap)"
  SD=${SNAP_DIR:-/tmp}
  $C/bench_snap $C/models/stories260K/stories260K.bin --device cuda --reps ${SNAP_REPS:-3} --dir $SD 24 256 512
  [ -f $M-r110m.gguf ] || $S convert --random-shape 110m $M-r110m.gguf --type f16 \
    --tokenizer $C/llama2-tokenizer.bin >/dev/null
  $C/bench_snap $M-r110m.gguf --device cuda --reps ${SNAP_REPS:-3} --dir $SD 24 256 1024
  for kv in f32 f16; do
    $C/bench_snap $M --device cuda --kv $kv --reps ${SNAP_REPS:-3} --dir $SD 24 256 1024 4096
  done
fi

if has migrate; then
  stamp "migration: sessions saved on one device and continued on the other (snap_migrate)"
  SHOAL_TEST_DEVICES="cpu cuda" SHOAL_MODELS=$C/models bash $HERE/migrate.sh $C/snap_migrate
  T=$(nproc)
  [ "${MIGRATE_1B:-1}" = 1 ] && for pair in "cpu cuda" "cuda cpu"; do
    # shellcheck disable=SC2086
    $C/snap_migrate $M-f32.gguf $pair --kv f32 --threads $T --prompt 16 --before 16 --after 32 --exact
    for kv in f32 f16; do
      # shellcheck disable=SC2086
      $C/snap_migrate $M $pair --kv $kv --threads $T --prompt 16 --before 16 --after 32
    done
  done
fi

if has peer; then
  stamp "PyTorch peer"
  timeout 300 python3 $HERE/torch_peer.py $M
fi
stamp done
