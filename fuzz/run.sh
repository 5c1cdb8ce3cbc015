#!/bin/bash
# fuzz/run.sh [SECONDS] [TARGET...]: builds the libFuzzer targets (clang-14, ASan+UBSan, own build dir) and
# fuzzes each TARGET (default: every shoal_add_fuzzer in fuzz/CMakeLists.txt) for SECONDS (default 60).
# Fails on any crash, leak, UB or timeout; the input that caused it is written to $BUILD/artifacts/.
#
# Seeds of target T: fuzz/corpus/T/ (committed, small), plus for fuzz_wasm the binary modules of the spec
# suite ($SHOAL_SPEC_DIR/json/*.wasm, default ../shared/wasm-spec next to the checkout) when present.
# Inputs the fuzzer finds go to $BUILD/corpus/T/ and are kept between runs.
# Environment: SHOAL_FUZZ_BUILD (build dir, default build-fuzz), CC (default clang-14), SHOAL_SPEC_DIR.
set -euo pipefail
secs="${1:-60}"
shift || true
src="$(cd "$(dirname "$0")/.." && pwd)"
build="${SHOAL_FUZZ_BUILD:-$src/build-fuzz}"
spec="${SHOAL_SPEC_DIR:-$src/../shared/wasm-spec}"
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(sed -n 's/^shoal_add_fuzzer(\([A-Za-z0-9_]*\).*/\1/p' "$src/fuzz/CMakeLists.txt")
fi

# Warnings are the normal builds' job; this build hunts crashes.
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_C_COMPILER="${CC:-clang-14}" -DSHOAL_FUZZ=ON \
    -DSHOAL_WERROR=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" -j2 "${targets[@]}"

status=0
for t in "${targets[@]}"; do
    seeds="$build/seeds/$t"
    corpus="$build/corpus/$t"
    mkdir -p "$seeds" "$corpus" "$build/artifacts"
    if [ -d "$src/fuzz/corpus/$t" ]; then
        cp "$src/fuzz/corpus/$t"/* "$seeds"/
    fi
    if [ "$t" = fuzz_wasm ] && compgen -G "$spec/json/*.wasm" >/dev/null; then
        # Small modules only: the fuzzer mutates them better, and a few big ones would dominate.
        find "$spec/json" -name '*.wasm' -size -64k -exec cp -t "$seeds" {} +
    fi
    echo "== $t: $secs s, $(ls "$seeds" | wc -l) seeds"
    # -rss_limit_mb bounds what inputs commit; targets cap their own allocations far below it.
    if ! "$build/fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" "$corpus" "$seeds"; then
        echo "== $t: FAILED (see $build/artifacts/)"
        status=1
    fi
done
exit $status
