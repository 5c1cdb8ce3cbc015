#!/bin/bash
# run_wasi.sh: `shoal run` end to end with the guests of tests/wasi/guests: args, environment, stdio, exit
# codes, files in a preopened directory, escapes from it, clocks and randomness, bad pointers, traps,
# --fuel, --timeout, --max-memory and the CLI's errors. Argument "walk": resolve paths without openat2.
set -u
: "${SHOAL:?}" "${SHOAL_GUEST_DIR:?}"
G=$SHOAL_GUEST_DIR
if [ ! -x "$SHOAL" ] || [ ! -f "$G/wasi_basic.wasm" ]; then
    echo "skip: shoal CLI or the wasi guests are not built"
    exit 77
fi
if [ "${1:-}" = walk ]; then
    export SHOAL_WASI_NO_OPENAT2=1
fi
T=$(mktemp -d /tmp/shoal-wasi-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }

# run NAME WANT_RC [shoal run args...]: runs, keeps stdout/stderr in $T/out $T/err, checks the exit code.
run() {
    local name=$1 want=$2
    shift 2
    "$SHOAL" run "$@" >"$T/out" 2>"$T/err" </dev/null
    local rc=$?
    if [ "$rc" = "$want" ]; then pass "$name (exit $rc)"; else
        fail "$name: exit $rc, want $want"; sed 's/^/    out: /' "$T/out" | tail -20; sed 's/^/    err: /' "$T/err" | tail -5
    fi
}
has() { # has NAME FILE TEXT
    if grep -qF -- "$3" "$2"; then pass "$1"; else fail "$1: '$3' not in $(basename "$2")"; sed 's/^/    /' "$2" | tail -8; fi
}

# --- args, env, stdio, exit codes ---
printf 'hello\nwasi\n' >"$T/in"
"$SHOAL" run --env SHOW=FOO,BAR,EMPTY --env FOO=1 --env=EMPTY= "$G/wasi_basic.wasm" a "b c" exit=7 <"$T/in" >"$T/out" 2>"$T/err"
rc=$?
[ $rc = 7 ] && pass "basic: proc_exit code passes through" || fail "basic: exit $rc, want 7"
cat >"$T/want" <<END
argc=4
argv[0]=$G/wasi_basic.wasm
argv[1]=a
argv[2]=b c
argv[3]=exit=7
envc=3
env FOO=1
env BAR=(unset)
env EMPTY=
HELLO
WASI
stdin bytes=11
END
if diff -u "$T/want" "$T/out"; then pass "basic: args, env, stdin -> stdout"; else fail "basic: stdout differs"; fi
has "basic: stderr" "$T/err" "this goes to stderr"
run "basic: _start returning is exit 0" 0 "$G/wasi_basic.wasm"
run "exit 42" 42 "$G/wasi_trap.wasm" exit 42
run "exit 300 is truncated like a host process" 44 "$G/wasi_trap.wasm" exit 300

if [ -f "$G/hello.wasm" ]; then
    run "examples/hello" 0 "$G/hello.wasm" Ada Grace
    has "examples/hello: greeting" "$T/out" "Hello, Ada and Grace! (from a Shoal guest)"
fi

# --- files in a preopened directory ---
mkdir "$T/files"
run "files" 0 --dir "$T/files::/sandbox" "$G/wasi_files.wasm" /sandbox
has "files: every step" "$T/out" "files: all ok"
if [ "$(cat "$T/files/keep.txt" 2>/dev/null)" = "written by the guest" ]; then pass "files: host sees the guest's file"
else fail "files: keep.txt missing or wrong on the host"; fi
mkdir "$T/files2"
run "files: preopen under its host name" 0 --dir "$T/files2" "$G/wasi_files.wasm" "$T/files2"
mkdir "$T/files3"
(cd "$T/files3" && "$SHOAL" run --dir . "$G/wasi_files.wasm" . >"$T/out" 2>"$T/err")
rc=$?
[ $rc = 0 ] && [ -f "$T/files3/keep.txt" ] && pass "files: --dir . and relative paths" || fail "files with --dir .: exit $rc"

mkdir "$T/fdops"
run "fd and path calls beyond libc's common paths" 0 --dir "$T/fdops::/w" "$G/wasi_fdops.wasm" /w
has "fdops: summary" "$T/out" "fdops: all ok"

# --- escapes ---
E=$T/esc
mkdir -p "$E/sandbox/sub" "$E/outside"
echo secret >"$E/outside/secret.txt"
echo f >"$E/sandbox/file.txt"
echo i >"$E/sandbox/sub/inner.txt"
ln -s ../outside "$E/sandbox/out"
ln -s /etc "$E/sandbox/abs"
ln -s loop2 "$E/sandbox/loop1"
ln -s loop1 "$E/sandbox/loop2"
ln -s ../outside/secret.txt "$E/sandbox/secretlink"
ln -s sub/inner.txt "$E/sandbox/inlink"
ln -s ../.. "$E/sandbox/sub/upup"
touch -d '2001-01-01' "$E/outside/secret.txt"
before=$(cd "$E/outside" && ls -la --time-style=+%s . && md5sum secret.txt)
run "escape: every attempt refused" 0 --dir "$E/sandbox::/sandbox" "$G/wasi_escape.wasm" /sandbox
has "escape: summary" "$T/out" "escape: all refused"
after=$(cd "$E/outside" && ls -la --time-style=+%s . && md5sum secret.txt)
if [ "$before" = "$after" ]; then pass "escape: outside untouched"; else fail "escape: outside changed"; echo "$after"; fi
[ -f "$E/sandbox/file.txt" ] && pass "escape: file.txt still inside" || fail "escape: file.txt moved"

# --- clocks, random, poll ---
printf 'abcdef' >"$T/six"
"$SHOAL" run "$G/wasi_clock.wasm" "$(date +%s)" <"$T/six" >"$T/out" 2>"$T/err"
rc=$?
[ $rc = 0 ] && pass "clock (exit 0)" || { fail "clock: exit $rc"; grep FAIL "$T/out"; cat "$T/err"; }

# --- bad pointers ---
mkdir "$T/ef"
run "efault" 0 --dir "$T/ef::/ef" "$G/wasi_efault.wasm"
has "efault: summary" "$T/out" "efault: all refused"
if grep -q LEAKED "$T/out"; then fail "efault: a write with a bad iovec wrote"; else pass "efault: nothing written"; fi

# --- random arguments to every call: errnos, never a crash, nothing outside the preopen ---
mkdir -p "$T/chaos/box" "$T/chaos/outside"
echo keep >"$T/chaos/outside/marker"
for seed in 1 2 3; do
    run "chaos seed $seed" 0 --dir "$T/chaos/box::/c" "$G/wasi_chaos.wasm" 20000 $seed
    has "chaos seed $seed: summary" "$T/err" "no crash"
done
if [ "$(ls -A "$T/chaos" | tr '\n' ' ')" = "box outside " ] && [ "$(ls -A "$T/chaos/outside")" = marker ] &&
    [ "$(cat "$T/chaos/outside/marker")" = keep ]; then pass "chaos: nothing outside the preopen"
else fail "chaos: something changed outside the preopen"; ls -la "$T/chaos" "$T/chaos/outside"; fi

# --- traps ---
run "trap: div0" 134 "$G/wasi_trap.wasm" div0
has "trap: div0 message" "$T/err" "trap: integer divide by zero"
has "trap: div0 function" "$T/err" "divide_by"
has "trap: div0 offset" "$T/err" "code offset 0x"
has "trap: output before the trap" "$T/out" "before div0"
run "trap: unreachable" 134 "$G/wasi_trap.wasm" unreachable
has "trap: unreachable message" "$T/err" "trap: unreachable"
has "trap: unreachable function" "$T/err" "reach_unreachable"
run "trap: oob" 134 "$G/wasi_trap.wasm" oob
has "trap: oob message" "$T/err" "trap: out of bounds memory access"
has "trap: oob function" "$T/err" "load_far_away"

# --- limits ---
run "fuel stops an infinite loop" 134 --fuel 2000000 "$G/wasi_trap.wasm" loop
has "fuel: message" "$T/err" "fuel exhausted"
start=$(date +%s)
run "timeout stops an infinite loop" 124 --timeout 1 "$G/wasi_trap.wasm" loop
has "timeout: message" "$T/err" "interrupted"
run "timeout stops a guest blocked in poll_oneoff" 124 --timeout 0.5 "$G/wasi_trap.wasm" sleep
"$SHOAL" run --timeout 0.5 "$G/wasi_basic.wasm" < <(sleep 4) >"$T/out" 2>"$T/err"
rc=$?
[ $rc = 124 ] && pass "timeout stops a guest blocked reading stdin (exit 124)" || fail "timeout on a blocked read: exit $rc"
elapsed=$(($(date +%s) - start))
[ $elapsed -lt 20 ] && pass "timeouts took ${elapsed}s" || fail "timeouts took ${elapsed}s"
run "no limit: 64 MiB of malloc" 0 "$G/wasi_trap.wasm" grow
has "grow: all blocks" "$T/out" "allocated 64 MiB"
run "max-memory stops growth" 3 --max-memory 4M "$G/wasi_trap.wasm" grow
if grep -qE '^allocated [0-3] MiB$' "$T/out"; then pass "max-memory: under 4 MiB"; else fail "max-memory: $(cat "$T/out")"; fi
run "max-memory in pages" 3 --max-memory 64P "$G/wasi_trap.wasm" grow

# --- the same guests under Node.js's WASI: same output, same exit code ---
if command -v node >/dev/null; then
    NODE_RUN="node --no-warnings $(dirname "$0")/node_wasi.mjs"
    same() { # same NAME [run args...]: shoal and node agree on stdout and the exit code
        local name=$1
        shift
        rm -rf "$T/ref" && mkdir "$T/ref"
        "$SHOAL" run "$@" <"$T/in" >"$T/out.shoal" 2>/dev/null
        local rs=$?
        rm -rf "$T/ref" && mkdir "$T/ref"
        $NODE_RUN "$@" <"$T/in" >"$T/out.node" 2>/dev/null
        local rn=$?
        if [ $rs = $rn ] && cmp -s "$T/out.shoal" "$T/out.node"; then pass "same as node: $name"
        else fail "differs from node: $name (exit $rs vs $rn)"; diff "$T/out.shoal" "$T/out.node" | head -5; fi
    }
    same basic --env SHOW=A,B --env A=x "$G/wasi_basic.wasm" one "two three" exit=3
    same files --dir "$T/ref::/r" "$G/wasi_files.wasm" /r
    same "trap exit code" "$G/wasi_trap.wasm" exit 5
    [ -f "$G/hello.wasm" ] && same hello "$G/hello.wasm" Ada
fi

# --- the CLI's own errors ---
run "help" 0 --help
has "help: usage" "$T/out" "usage: shoal run"
run "missing module" 1 "$T/nope.wasm"
has "missing module: message" "$T/err" "nope.wasm"
echo "not wasm" >"$T/bad.wasm"
run "malformed module" 1 "$T/bad.wasm"
has "malformed module: names the file" "$T/err" "bad.wasm"
if command -v wat2wasm >/dev/null; then
    printf '(module (import "env" "mystery" (func)) (func (export "_start")))' >"$T/imp.wat"
    wat2wasm "$T/imp.wat" -o "$T/imp.wasm"
    run "unresolvable import" 1 "$T/imp.wasm"
    has "unresolvable import: names it" "$T/err" '"env" "mystery"'
    printf '(module (import "wasi_snapshot_preview1" "no_such_call" (func)) (func (export "_start")))' >"$T/imp2.wat"
    wat2wasm "$T/imp2.wat" -o "$T/imp2.wasm"
    run "unknown wasi function" 1 "$T/imp2.wasm"
    has "unknown wasi function: names it" "$T/err" "no_such_call"
fi
run "bad option" 2 --frobnicate "$G/wasi_basic.wasm"
run "bad --max-memory" 2 --max-memory lots "$G/wasi_basic.wasm"
run "bad --env" 2 --env NOEQUALS "$G/wasi_basic.wasm"
run "missing --dir" 1 --dir "$T/does-not-exist" "$G/wasi_basic.wasm"
has "missing --dir: message" "$T/err" "does-not-exist"

echo "$fails failure(s)"
[ $fails = 0 ]
