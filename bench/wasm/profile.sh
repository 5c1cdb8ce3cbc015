#!/usr/bin/env bash
# profile.sh: repeatable instruction counts for the interpreter benchmark. Runs each kernel at a small
# "profile size" under valgrind's callgrind natively and under `shoal run`, prints a table of executed
# host instructions (Ir) and their ratio, the Wasm instructions the guest executed (opmix.py), how many
# internal operations Shoal dispatched for them (executions of the indirect jumps in its interpreter
# loop) and the host instructions per dispatch; with --lines also the hottest source lines of Shoal per
# program (self cost, i.e. where the interpreter itself spends its instructions), with the source text.
#
# usage: bench/wasm/profile.sh [--build-dir DIR] [--shoal PATH] [--lines N] [program...]
#   --build-dir DIR  as for run.sh (default <repo>/build); outputs go to DIR/bench-wasm/prof
#   --shoal PATH     the CLI to profile (default DIR/shoal; build it RelWithDebInfo so lines resolve)
#   --lines N        also print the N hottest source lines of shoal for each program
# The Ir ratio is not the time ratio (an interpreter's loads and indirect jumps cost more per
# instruction), but it does not move with the machine's load, so it is the number to compare changes by.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build="$root/build"
shoal=""
lines=0
picked=()
while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --shoal) shoal=$2; shift 2 ;;
    --lines) lines=$2; shift 2 ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    -*) echo "profile.sh: unknown option '$1'" >&2; exit 2 ;;
    *) picked+=("$1"); shift ;;
    esac
done
command -v valgrind >/dev/null || { echo "profile.sh: needs valgrind" >&2; exit 2; }
build=$(mkdir -p "$build" && cd "$build" && pwd)
shoal=${shoal:-$build/shoal}
out="$build/bench-wasm"
prof="$out/prof"
mkdir -p "$prof"

# Profile sizes: about 40-130 M native instructions each, so callgrind on Shoal takes well under a minute.
sizes="fib:30 sieve:400000 nbody:200000 matmul:160 mandel:300 memcopy:2 sha256:1 sort:200000 hashmap:50000"
only=$(IFS=,; echo "${picked[*]:-}")
"$here/run.sh" --build-dir "$build" --build-only ${only:+--only "$only"} || exit 1
[ -x "$shoal" ] || { echo "profile.sh: no shoal CLI at $shoal" >&2; exit 1; }

ir() { # out-file command...: runs under callgrind, prints the total Ir
    local f=$1
    shift
    valgrind --tool=callgrind --callgrind-out-file="$f" --compress-strings=no --compress-pos=no --dump-instr=yes \
        "$@" >"$f.stdout" 2>"$f.log" || { echo "FAIL"; return; }
    awk '/^(summary|totals):/ { print $2; exit }' "$f"
}

# Start-up (process, dynamic linking, module load) is measured on an empty program and left out of the
# ratios, so they describe execution; its own row shows what it costs.
printf 'int main(void) { return 0; }\n' >"$prof/empty.c"
clang-14 -O2 "$prof/empty.c" -o "$prof/empty" &&
    clang-14 --target=wasm32-wasi --sysroot=/usr -O2 "$prof/empty.c" -o "$prof/empty.wasm" || exit 1
n0=$(ir "$prof/empty.native.cg" "$prof/empty")
s0=$(ir "$prof/empty.shoal.cg" "$shoal" run "$prof/empty.wasm")
[[ "$n0$s0" =~ ^[0-9]+$ ]] || { echo "profile.sh: the empty program failed under callgrind" >&2; exit 1; }
echo "| program | size | native Ir | shoal Ir | shoal/native | Wasm instrs | dispatches | disp/Wasm | shoal Ir/disp |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
echo "| (empty program: start-up) | | $n0 | $s0 | | | | | |"
status=0
for spec in $sizes; do
    name=${spec%%:*}
    size=${spec#*:}
    if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
    n=$(ir "$prof/$name.native.cg" "$out/$name" "$size")
    s=$(ir "$prof/$name.shoal.cg" "$shoal" run "$out/$name.wasm" "$size")
    if [ "$s" != FAIL ] && ! cmp -s "$prof/$name.native.cg.stdout" "$prof/$name.shoal.cg.stdout"; then
        s="wrong output"
    fi
    [[ "$s" =~ ^[0-9]+$ ]] || status=1
    # Executed Wasm instructions (opmix.py, needs node + wabt) and interpreter dispatches.
    w=$(command -v node >/dev/null && command -v wat2wasm >/dev/null &&
        python3 "$here/opmix.py" "$out/$name.wasm" --blocks 0 -- "$size" 2>/dev/null | awk 'NR == 1 { print $3 }')
    d=$([[ "$s" =~ ^[0-9]+$ ]] && python3 "$here/cgreport.py" dispatch "$prof/$name.shoal.cg" "$shoal" 2>/dev/null)
    awk -v p="$name" -v z="$size" -v n="$n" -v s="$s" -v w="${w:--}" -v d="${d:--}" -v n0="$n0" -v s0="$s0" 'BEGIN {
        r = (n ~ /^[0-9]+$/ && s ~ /^[0-9]+$/) ? sprintf("%.1fx", (s - s0) / (n - n0)) : "-"
        dw = (w ~ /^[0-9]+$/ && d ~ /^[0-9]+$/ && w > 0) ? sprintf("%.2f", d / w) : "-"
        id = (s ~ /^[0-9]+$/ && d ~ /^[0-9]+$/ && d > 0) ? sprintf("%.1f", (s - s0) / d) : "-"
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", p, z, n, s, r, w, d, dw, id }'
done

if [ "$lines" -gt 0 ]; then
    for spec in $sizes; do
        name=${spec%%:*}
        if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
        [ -s "$prof/$name.shoal.cg" ] || continue
        echo
        echo "### $name: hottest lines of shoal (self Ir, % of total)"
        python3 "$here/cgreport.py" lines "$prof/$name.shoal.cg" "$lines"
    done
fi
exit $status
