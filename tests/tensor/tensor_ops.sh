#!/usr/bin/env bash
# Runs the tensor_ops guest on the CPU device in every CPU memory mode; results must be bit-identical.
# Also: the matmul example, and a clear refusal of devices that are absent.
set -u
G=${SHOAL_GUEST_DIR:?}
[ -f "$G/tensor_ops.wasm" ] || { echo "skip: guests not built (no clang/wasi-libc)"; exit 77; }
fail=0
declare -A sums
for mode in host copy; do
  out=$("$SHOAL" run --device cpu --memory $mode "$G/tensor_ops.wasm" 2>&1); rc=$?
  echo "$out" | grep -E "^(FAIL|device|checksum)|checks passed"
  [ $rc -eq 0 ] || { echo "FAIL: tensor_ops in mode $mode exited $rc"; fail=1; }
  sums[$mode]=$(echo "$out" | sed -n 's/^checksum: //p')
done
if [ -z "${sums[host]}" ] || [ "${sums[host]}" != "${sums[copy]}" ]; then
  echo "FAIL: results differ across memory modes: host=${sums[host]} copy=${sums[copy]}"; fail=1
fi
out=$("$SHOAL" run --device cpu "$G/matmul.wasm" 2>&1); rc=$?
echo "$out"
{ [ $rc -eq 0 ] && echo "$out" | grep -q "0 errors across 16384 elements"; } || { echo "FAIL: matmul example"; fail=1; }
# Absent or unknown devices: a clear message and a non-zero exit, never a crash.
out=$("$SHOAL" run --device cuda "$G/matmul.wasm" 2>&1); rc=$?
echo "cuda: $out"
if [ -e /dev/nvidia0 ]; then :; else
  { [ $rc -ne 0 ] && [ $rc -lt 128 ] && echo "$out" | grep -qiE "no CUDA device|without the CUDA backend"; } \
    || { echo "FAIL: --device cuda without a GPU must say why"; fail=1; }
fi
out=$("$SHOAL" run --device tpu "$G/matmul.wasm" 2>&1); rc=$?
{ [ $rc -ne 0 ] && [ $rc -lt 128 ] && echo "$out" | grep -q "unknown device"; } || { echo "FAIL: unknown device: $out"; fail=1; }
out=$("$SHOAL" run --device cpu --memory mapped "$G/matmul.wasm" 2>&1); rc=$?
{ [ $rc -ne 0 ] && [ $rc -lt 128 ] && echo "$out" | grep -q "memory modes host and copy"; } || { echo "FAIL: cpu/mapped: $out"; fail=1; }
exit $fail
