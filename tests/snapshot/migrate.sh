#!/usr/bin/env bash
# A session saved on one device and restored on another continues as if it had never stopped (see
# migrate.c). In CI (no GPU): CPU -> CPU through a file, bit-identical logits, on both trained models and
# both KV types. With SHOAL_TEST_DEVICES="cpu cuda" (the GPU machine: bench/cuda/run.sh migrate), every
# ordered pair of those devices.
#   migrate.sh MIGRATE_BINARY
set -u
B=$1
MODELS=${SHOAL_MODELS:-../shared/models}
[ -f "$MODELS/stories260K/stories260K.bin" ] || { echo "SKIP: $MODELS/stories260K/stories260K.bin not found"; exit 77; }
devs=(${SHOAL_TEST_DEVICES:-cpu})
fail=0 ran=0
for m in stories260K/stories260K.bin aidreams260K/aidreams260K.bin; do
  [ -f "$MODELS/$m" ] || continue
  for from in "${devs[@]}"; do
    for to in "${devs[@]}"; do
      [ ${#devs[@]} -gt 1 ] && [ "$from" == "$to" ] && continue
      for kv in f32 f16; do
        "$B" "$MODELS/$m" "$from" "$to" --kv $kv --prompt 16 --before 32 --after 80 --exact
        rc=$?
        [ $rc -eq 77 ] && exit 77
        [ $rc -eq 0 ] && ran=$((ran + 1)) || { echo "FAIL: $m $from -> $to kv $kv (exit $rc)"; fail=1; }
      done
    done
  done
done
echo "$ran passed, $fail failed"
exit $fail
