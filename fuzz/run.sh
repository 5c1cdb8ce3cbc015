#!/bin/bash
# fuzz/run.sh [SECONDS] [TARGET]: builds the libFuzzer targets (clang-14, ASan+UBSan, own build dir) and
# fuzzes TARGET (default fuzz_wasm) for SECONDS (default 60). Fails on any crash, leak, UB or timeout.
#
# Seeds: the binary modules of the spec suite ($SHOAL_SPEC_DIR/json/*.wasm, default ../shared/wasm-spec
# next to the checkout) when present, else the small committed corpus in fuzz/corpus/. New inputs go to
# $BUILD/corpus/TARGET, kept between runs; a crashing input is written to $BUILD/artifacts/.
# Environment: SHOAL_FUZZ_BUILD (build dir, default build-fuzz), CC (default clang-14), SHOAL_SPEC_DIR.
set -euo pipefail
secs="${1:-60}"
target="${2:-fuzz_wasm}"
src="$(cd "$(dirname "$0")/.." && pwd)"
build="${SHOAL_FUZZ_BUILD:-$src/build-fuzz}"
spec="${SHOAL_SPEC_DIR:-$src/../shared/wasm-spec}"

cmake -S "$src" -B "$build" -G Ninja -DCMAKE_C_COMPILER="${CC:-clang-14}" -DSHOAL_FUZZ=ON \
    -DSHOAL_WERROR=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null  # warnings are the normal builds' job
ninja -C "$build" -j2 "$target"

seeds="$build/seeds/$target"
corpus="$build/corpus/$target"
artifacts="$build/artifacts"
mkdir -p "$seeds" "$corpus" "$artifacts"
[ -d "$src/fuzz/corpus/$target" ] && cp -n "$src/fuzz/corpus/$target"/* "$seeds"/  # committed per-target seeds
if [ "$target" = fuzz_wasm ] && [ -z "$(ls -A "$seeds")" ]; then
    if compgen -G "$spec/json/*.wasm" >/dev/null; then
        # Small modules only: the fuzzer mutates them better, and a handful of huge ones would dominate.
        find "$spec/json" -name '*.wasm' -size -64k -exec cp -t "$seeds" {} +
        echo "seeds: $(ls "$seeds" | wc -l) modules from $spec/json"
    else
        cp "$src"/fuzz/corpus/*.wasm "$seeds"/
        echo "seeds: the committed corpus (spec suite not found at $spec)"
    fi
fi

# -rss_limit_mb covers what a guest commits (memories are capped at a few MiB by the target); the
# virtual reservations of linear memories do not count against it.
"$build/fuzz/$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "$seeds"
