#!/usr/bin/env bash
# run.sh: the interpreter benchmark. Builds the kernels in this folder natively and to wasm32-wasi (both
# with clang-14 -O2, so the comparison measures the engine, not the compiler), runs each natively, on
# Shoal (`shoal run`) and on Node.js's V8 (node_wasi.mjs), checks that all three print the same output,
# and prints a Markdown table of the best of N CPU (or wall-clock) times with ratios and geometric means.
#
# usage: bench/wasm/run.sh [--build-dir DIR] [--reps N] [--only a,b,...] [--timeout S]
#                          [--clock cpu|wall] [--shoal PATH] [--no-shoal] [--no-node] [--check]
#                          [--build-only]
#   --build-dir DIR  CMake build dir holding (or to build) the `shoal` CLI; default <repo>/build.
#                    The benchmark binaries go to DIR/bench-wasm.
#   --reps N         timed runs per program and engine; the best is reported (default 3).
#   --clock cpu|wall cpu (default): user+system CPU seconds of the process, which the other jobs on a
#                    shared machine disturb far less than wall-clock time; it includes Node's compiler
#                    and GC threads. wall: elapsed seconds (use on an otherwise idle machine).
#   --check          small sizes, one run each: a correctness test (used by ctest), not a benchmark.
#   --build-only     build the native and wasm binaries, run nothing (profile.sh uses it).
# Exit status: 0 when every engine that ran printed the native output; 1 on a mismatch or failure;
# 2 on bad usage; 77 when no guest compiler is installed (so ctest reports a skip).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build="$root/build"
reps=3
clock=cpu
only=""
limit=600
shoal=""
use_shoal=1
use_node=1
check=0
build_only=0

while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --clock) clock=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --timeout) limit=$2; shift 2 ;;
    --shoal) shoal=$2; shift 2 ;;
    --no-shoal) use_shoal=0; shift ;;
    --no-node) use_node=0; shift ;;
    --check) check=1; shift ;;
    --build-only) build_only=1; shift ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case "$clock" in cpu | wall) ;; *) echo "run.sh: --clock is cpu or wall" >&2; exit 2 ;; esac
case "$reps" in '' | *[!0-9]* | 0) echo "run.sh: --reps wants a positive integer" >&2; exit 2 ;; esac
mkdir -p "$build" || exit 2
build=$(cd "$build" && pwd)
out="$build/bench-wasm"
mkdir -p "$out/logs" || exit 2

# name:benchmark-size:check-size. Sizes are each program's argv[1]; defaults take 0.3-1 s natively.
programs="fib:40:24 sieve:16000000:100000 nbody:5000000:20000 matmul:480:40 mandel:1600:120
          memcopy:24:1 sha256:160:1 sort:3000000:50000 hashmap:400000:20000"

cc=$(command -v clang-14 || command -v clang || true)
if [ -z "$cc" ] || [ ! -e /usr/lib/wasm32-wasi/libc.a ]; then
    echo "run.sh: needs clang and wasi-libc (apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32)" >&2
    exit 77
fi
wasm_flags=(--target=wasm32-wasi --sysroot=/usr -O2 -mbulk-memory -msign-ext -mnontrapping-fptoint
            -mmutable-globals -Wall -Wextra -Werror)
native_flags=(-O2 -Wall -Wextra -Werror)

# Rebuilds $2 from $1 when missing or older than its source or the shared header.
stale() { [ ! -e "$2" ] || [ "$1" -nt "$2" ] || [ "$here/bench_util.h" -nt "$2" ]; }

selected=()
for spec in $programs; do
    name=${spec%%:*}
    if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
    selected+=("$spec")
    src="$here/$name.c"
    if stale "$src" "$out/$name"; then
        "$cc" "${native_flags[@]}" "$src" -o "$out/$name" -lm || { echo "run.sh: native build of $name failed" >&2; exit 1; }
    fi
    if stale "$src" "$out/$name.wasm"; then
        "$cc" "${wasm_flags[@]}" "$src" -o "$out/$name.wasm" -Wl,--strip-debug ||
            { echo "run.sh: wasm build of $name failed" >&2; exit 1; }
    fi
done
[ ${#selected[@]} -gt 0 ] || { echo "run.sh: --only matched no program" >&2; exit 2; }
[ $build_only = 1 ] && exit 0

# Shoal: use the given CLI, else the build dir's, building it there if needed. Failing that the column
# says why instead of the whole run failing.
shoal_note=""
if [ $use_shoal = 0 ]; then
    shoal_note="skipped (--no-shoal)"
elif [ -n "$shoal" ]; then
    [ -x "$shoal" ] || shoal_note="not found: $shoal"
else
    shoal="$build/shoal"
    if [ ! -f "$build/CMakeCache.txt" ]; then
        cmake -S "$root" -B "$build" -G Ninja >"$out/logs/configure.log" 2>&1
    fi
    if ! cmake --build "$build" --target shoal_cli -j 2 >"$out/logs/build-shoal.log" 2>&1; then
        shoal_note="not buildable (see $out/logs/build-shoal.log)"
    fi
fi
if [ $use_node = 0 ]; then
    node_note="skipped (--no-node)"
elif command -v node >/dev/null; then
    node_note=""
else
    node_note="node not installed"
fi

status=0
# Runs one engine on one program $reps times; sets `best` (seconds) or `fail` (why).
measure() { # engine name size command...
    local engine=$1 name=$2 size=$3
    shift 3
    best=""
    fail=""
    local n=$([ $check = 1 ] && echo 1 || echo "$reps") i t0 t1 rc dt TIMEFORMAT=%3U+%3S
    for ((i = 0; i < n; i++)); do
        # `time` reports the CPU time of the whole process tree (timeout and its child) once it is
        # reaped; EPOCHREALTIME brackets the wall-clock time.
        t0=$EPOCHREALTIME
        { time timeout "$limit" "$@" "$size" >"$out/logs/$name.$engine.out" 2>"$out/logs/$name.$engine.err"; } \
            2>"$out/logs/$name.$engine.time"
        rc=$?
        t1=$EPOCHREALTIME
        if [ $rc != 0 ]; then
            fail=$([ $rc = 124 ] && echo "timeout" || echo "exit $rc")
            return
        fi
        if [ "$engine" != native ] && ! cmp -s "$out/logs/$name.native.out" "$out/logs/$name.$engine.out"; then
            fail="wrong output"
            return
        fi
        if [ $clock = wall ]; then
            dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        else
            dt=$(awk -F+ '{ printf "%.3f", $1 + $2 }' "$out/logs/$name.$engine.time")
        fi
        if [ -z "$best" ] || awk -v a="$dt" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$dt; fi
    done
}

rows=()
for spec in "${selected[@]}"; do
    IFS=: read -r name size small <<<"$spec"
    [ $check = 1 ] && size=$small
    measure native "$name" "$size" "$out/$name"
    if [ -n "$fail" ]; then
        echo "run.sh: native $name failed ($fail); see $out/logs/$name.native.err" >&2
        status=1
        continue
    fi
    tn=$best
    ts=$([ -n "$shoal_note" ] && echo "n/a")
    if [ -z "$shoal_note" ]; then
        measure shoal "$name" "$size" "$shoal" run "$out/$name.wasm"
        if [ -n "$fail" ]; then
            ts="FAIL: $fail"
            status=1
            echo "run.sh: shoal $name: $fail; see $out/logs/$name.shoal.{out,err}" >&2
        else
            ts=$best
        fi
    fi
    tv=$([ -n "$node_note" ] && echo "n/a")
    if [ -z "$node_note" ]; then
        measure node "$name" "$size" node --no-warnings --single-threaded-gc "$here/node_wasi.mjs" "$out/$name.wasm"
        if [ -n "$fail" ]; then
            tv="FAIL: $fail"
            status=1
            echo "run.sh: node $name: $fail; see $out/logs/$name.node.{out,err}" >&2
        else
            tv=$best
        fi
    fi
    rows+=("$name|$tn|$ts|$tv")
done

# The table: ratios where both times exist, geometric means over the programs that have them.
{
    echo "| program | native s | shoal s | node s | shoal/native | node/native |"
    echo "|---|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
} | awk -F'|' '
    function num(x) { return x ~ /^[0-9.]+$/ }
    NR <= 2 { print; next }
    {
        rs = (num($2) && num($3) && $2 > 0) ? sprintf("%.2fx", $3 / $2) : "-"
        rv = (num($2) && num($4) && $2 > 0) ? sprintf("%.2fx", $4 / $2) : "-"
        if (rs != "-") { ls += log($3 / $2); ns++ }
        if (rv != "-") { lv += log($4 / $2); nv++ }
        printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, rs, rv
    }
    END {
        gs = ns ? sprintf("%.2fx (%d)", exp(ls / ns), ns) : "-"
        gv = nv ? sprintf("%.2fx (%d)", exp(lv / nv), nv) : "-"
        printf "| **geomean** (programs) | | | | %s | %s |\n", gs, gv
    }'
echo
echo "best of $([ $check = 1 ] && echo 1 || echo "$reps") runs, $([ $clock = cpu ] && echo "CPU (user+sys)" || echo "wall-clock") seconds per process;" \
    "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
[ -n "$shoal_note" ] && echo "shoal: $shoal_note"
[ -n "$node_note" ] && echo "node: $node_note"
exit $status
