#!/usr/bin/env bash
# `shoal bench zerocopy --device cpu`: zero errors everywhere, pointer identity on the host mode, and the
# copy path's staging shows up in RSS while the zero-copy mode adds (almost) nothing.
set -u
G=${SHOAL_GUEST_DIR:?}
[ -f "$G/zc_bench.wasm" ] || { echo "skip: guests not built"; exit 77; }
out=$("$SHOAL" bench zerocopy --device cpu --reps 1 --quick --guest "$G/zc_bench.wasm" 2>&1); rc=$?
echo "$out"
fail=0
[ $rc -eq 0 ] || fail=1
echo "$out" | grep -q "failed:" && { echo "FAIL: a case failed"; fail=1; }
# every row: errors column is 0/N
bad=$(echo "$out" | awk '$0 ~ /^cpu\// { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\/[0-9]+$/ && $i !~ /^0\//) print }')
[ -z "$bad" ] || { echo "FAIL: wrong values: $bad"; fail=1; }
host16=$(echo "$out" | grep "^cpu/host" | grep "16MiB region")
copy16=$(echo "$out" | grep "^cpu/copy" | grep "16MiB region")
echo "$host16" | grep -q " yes " || { echo "FAIL: cpu/host must compute on the guest's addresses"; fail=1; }
rss_host=$(echo "$host16" | awk '{for(i=1;i<=NF;i++) if ($i ~ /^[0-9]+\/[0-9]+$/) print $(i+1)}')
rss_copy=$(echo "$copy16" | awk '{for(i=1;i<=NF;i++) if ($i ~ /^[0-9]+\/[0-9]+$/) print $(i+1)}')
echo "RSS delta on the 16 MiB region: host $rss_host MB, copy $rss_copy MB"
awk -v h="$rss_host" -v c="$rss_copy" 'BEGIN { exit !(h <= 0.1 && c >= 16) }' || { echo "FAIL: RSS deltas"; fail=1; }
exit $fail
