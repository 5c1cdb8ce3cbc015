#!/usr/bin/env bash
# profile.sh: repeatable instruction counts for the interpreter benchmark. Runs each kernel at a small
# "profile size" under valgrind's callgrind natively and under `shoal run`, prints a table of executed
# instructions (Ir) and their ratio, and with --lines the hottest source lines of Shoal per program (self
# cost, i.e. where the interpreter itself spends its instructions), with the source text.
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
    valgrind --tool=callgrind --callgrind-out-file="$f" --compress-strings=no --compress-pos=no \
        "$@" >"$f.stdout" 2>"$f.log" || { echo "FAIL"; return; }
    awk '/^(summary|totals):/ { print $2; exit }' "$f"
}

echo "| program | size | native Ir | shoal Ir | shoal/native |"
echo "|---|---:|---:|---:|---:|"
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
    awk -v p="$name" -v z="$size" -v n="$n" -v s="$s" 'BEGIN {
        r = (n ~ /^[0-9]+$/ && s ~ /^[0-9]+$/) ? sprintf("%.1fx", s / n) : "-"
        printf "| %s | %s | %s | %s | %s |\n", p, z, n, s, r }'
done

if [ "$lines" -gt 0 ]; then
    for spec in $sizes; do
        name=${spec%%:*}
        if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
        [ -s "$prof/$name.shoal.cg" ] || continue
        echo
        echo "### $name: hottest lines of shoal (self Ir, % of total)"
        python3 - "$prof/$name.shoal.cg" "$lines" <<'EOF'
import collections, sys
path, top = sys.argv[1], int(sys.argv[2])
cost = collections.Counter()
fn_cost = collections.Counter()
fl = fn = ""
skip_next = False  # the cost line after calls= is the callee's inclusive cost, not self cost
total = 0
with open(path) as f:
    for line in f:
        if line.startswith(("fl=", "fi=", "fe=")):
            fl = line[3:].strip()
        elif line.startswith("fn="):
            fn = line[3:].strip()
        elif line.startswith("calls="):
            skip_next = True
        elif line[:1].isdigit():
            parts = line.split()
            if skip_next:
                skip_next = False
                continue
            if len(parts) >= 2:
                n = int(parts[1])
                cost[(fl, int(parts[0]))] += n
                fn_cost[fn] += n
                total += n
if not total:
    sys.exit(0)
print("top functions: " + ", ".join("%s %.1f%%" % (f, 100.0 * c / total) for f, c in fn_cost.most_common(6)))
src_cache = {}
for (fl, ln), c in cost.most_common(top):
    if fl not in src_cache:
        # callgrind glues the compile directory and an absolute DWARF path together with "//".
        real = "/" + fl.rsplit("//", 1)[1] if "//" in fl else fl
        try:
            src_cache[fl] = open(real).read().split("\n")
        except OSError:
            src_cache[fl] = []
    text = src_cache[fl][ln - 1].strip() if 0 < ln <= len(src_cache[fl]) else ""
    short = "/".join(fl.split("/")[-2:])
    print("%5.1f%%  %s:%d  %s" % (100.0 * c / total, short, ln, text[:100]))
EOF
    done
fi
exit $status
