#!/usr/bin/env bash
# All of Shoal's tests, from scratch: installs what is missing, builds with gcc (release) and with clang
# under ASan+UBSan, runs every test in both builds, runs the fuzzers, and ends with "N passed, N failed".
# Options: --quick (gcc build only, no sanitizers, no fuzzing)   FUZZ_SECONDS=60 (per fuzz target)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
quick=0; [ "${1:-}" = "--quick" ] && quick=1
jobs=$(nproc 2>/dev/null || echo 2)
bash scripts/deps.sh || { echo "shoal: could not install dependencies"; echo "0 passed, 1 failed"; exit 1; }

passed=0; failed=0
record() { # name status
  if [ "$2" -eq 0 ]; then passed=$((passed+1)); echo "PASS: $1"; else failed=$((failed+1)); echo "FAIL: $1"; fi
}
run_ctest() { # build-dir label
  local log="$1/ctest.log"
  (cd "$1" && ctest --output-on-failure -j"$jobs" --timeout 1200) 2>&1 | tee "$log"
  # count per-test results from ctest's own lines ("Passed", "***Failed", "Not Run"/skipped count as passed? no: skipped are reported apart)
  local p f s
  p=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed' "$log")
  f=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(\*\*\*Failed|\*\*\*Exception|\*\*\*Timeout|Not Run)' "$log")
  s=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*\*\*\*Skipped' "$log")
  echo "[$2] ctest: $p passed, $f failed, $s skipped"
  passed=$((passed+p)); failed=$((failed+f))
}

echo "== build (gcc, release) =="
cmake -S . -B build -G Ninja -DCMAKE_C_COMPILER=gcc >/dev/null && ninja -C build -j"$jobs"
record "build gcc" $?
[ -d build ] && run_ctest build gcc

if [ $quick -eq 0 ]; then
  echo "== build (clang-14, ASan+UBSan; without CUDA: also checks the build that has no nvcc) =="
  cmake -S . -B build-asan -G Ninja -DCMAKE_C_COMPILER=clang-14 -DSHOAL_SANITIZE=ON -DSHOAL_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null \
    && ninja -C build-asan -j"$jobs"
  record "build clang asan+ubsan" $?
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  [ -d build-asan ] && run_ctest build-asan asan

  if [ -x fuzz/run.sh ]; then
    echo "== fuzz (${FUZZ_SECONDS:-60} s per target) =="
    bash fuzz/run.sh "${FUZZ_SECONDS:-60}"
    record "fuzz" $?
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
