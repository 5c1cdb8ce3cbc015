#!/usr/bin/env bash
# Whole-actor snapshots through the CLI: a guest stopped anywhere (fuel, SIGTERM, --timeout) or by its own
# checkpoint, frozen to one file and resumed in a new process, produces exactly the output of a run that
# never stopped; repeated freezes; refusals of damaged files. Usage: actor.sh
set -u
W=$SHOAL_GUEST_DIR/actor_guest.wasm
[ -f "$W" ] || { echo "SKIP: guest actor_guest.wasm was not built"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
N=40

"$SHOAL" run "$W" count $N >"$T/ref" || { echo "FAIL: the reference run failed"; exit 1; }
grep -q '^done ' "$T/ref" || { echo "FAIL: the reference run did not finish"; exit 1; }

# 1. Stopped by fuel at many different points, each resumed in a new process: the joined output must be
#    the reference, whatever instruction each stop fell on.
for fuel in 700000 3000000 11000000; do
    rm -f "$T/a.act"
    "$SHOAL" run --fuel $fuel --snapshot-on-exit "$T/a.act" "$W" count $N >"$T/out" 2>"$T/err"; rc=$?
    hops=0
    while [ $rc -eq 75 ] && [ $hops -lt 200 ]; do
        "$SHOAL" resume --fuel $fuel "$T/a.act" >>"$T/out" 2>"$T/err"; rc=$?
        hops=$((hops + 1))
    done
    if [ $rc -eq 0 ] && [ $hops -gt 0 ] && cmp -s "$T/out" "$T/ref"; then
        ok "fuel $fuel: frozen and resumed $hops times, output identical to the uninterrupted run"
    else
        bad "fuel $fuel: rc $rc after $hops resumes"; cat "$T/err"; diff "$T/out" "$T/ref" | head -5
    fi
done

# 2. SIGTERM while running (the guest runs long enough to be stopped mid-way).
LONG=4000
"$SHOAL" run "$W" count $LONG >"$T/ref_long" || { echo "FAIL: the long reference run failed"; exit 1; }
rm -f "$T/s.act"
"$SHOAL" run --snapshot-on-exit "$T/s.act" "$W" count $LONG >"$T/out" 2>"$T/err" &
pid=$!
sleep 0.3
kill -TERM $pid
wait $pid; rc=$?
if [ $rc -eq 0 ]; then
    echo "note: the guest finished before SIGTERM arrived; signal freeze not exercised by this run"
elif [ $rc -eq 75 ] && grep -q 'SIGTERM' "$T/err"; then
    "$SHOAL" resume "$T/s.act" >>"$T/out" 2>>"$T/err"; rc=$?
    if [ $rc -eq 0 ] && cmp -s "$T/out" "$T/ref_long"; then
        ok "SIGTERM: frozen, resumed in a new process, output identical"
    else
        bad "SIGTERM: resume rc $rc"; cat "$T/err"; diff "$T/out" "$T/ref_long" | head -5
    fi
else
    bad "SIGTERM: exit status $rc, expected 75"; cat "$T/err"
fi

# 3. --timeout with --snapshot-on-exit freezes instead of ending.
rm -f "$T/t.act"
"$SHOAL" run --timeout 0.2 --snapshot-on-exit "$T/t.act" "$W" count $LONG >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 75 ] && grep -q 'timeout' "$T/err"; then
    "$SHOAL" resume "$T/t.act" >>"$T/out" 2>>"$T/err"; rc=$?
    if [ $rc -eq 0 ] && cmp -s "$T/out" "$T/ref_long"; then ok "--timeout: frozen and resumed, output identical"
    else bad "--timeout: resume rc $rc"; cat "$T/err"; fi
elif [ $rc -eq 0 ]; then
    echo "note: the guest finished within the timeout"
else
    bad "--timeout: exit status $rc, expected 75"; cat "$T/err"
fi

# 4. The guest's own checkpoints: frozen at step 10, resumed (twice from the same file: a resume does not
#    consume it), checkpointing again at 20 into the same file, resumed again.
"$SHOAL" run "$W" ckpt $N >"$T/ref_ck" 2>&1
"$SHOAL" run --snapshot-on-exit "$T/c.act" "$W" ckpt $N 10 20 >"$T/c1" 2>&1; rc1=$?
"$SHOAL" resume "$T/c.act" >"$T/c2" 2>&1; rc2=$?
cp "$T/c.act" "$T/c20.act"
"$SHOAL" resume "$T/c20.act" >"$T/c3" 2>&1; rc3=$?
want_tail=$(sed -n '/^step 21 /,$p' "$T/ref_ck")
got_tail=$(sed -n '/^step 21 /,$p' "$T/c3")
if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ $rc3 -eq 0 ] && grep -q '^frozen after step 10$' "$T/c1" &&
   grep -q '^resumed after step 10$' "$T/c2" && grep -q '^frozen after step 20$' "$T/c2" &&
   grep -q '^resumed after step 20$' "$T/c3" && [ -n "$want_tail" ] && [ "$want_tail" == "$got_tail" ] &&
   [ "$(sed -n '/^step 11 /,/^step 20 /p' "$T/c2")" == "$(sed -n '/^step 11 /,/^step 20 /p' "$T/ref_ck")" ]; then
    ok "checkpoint(): frozen at 10 and 20, each resume continues exactly (returns 1 there)"
else
    bad "checkpoint(): rc $rc1 $rc2 $rc3"; head -3 "$T/c1" "$T/c2" "$T/c3"
fi
"$SHOAL" run "$W" ckpt 5 2 >"$T/nofile" 2>&1
grep -q 'checkpoint failed: -1: no snapshot file' "$T/nofile" && ok "checkpoint() without a file returns -1 with a reason" ||
    { bad "checkpoint() without a file"; cat "$T/nofile"; }

# 5. Open files move with the actor: frozen after reading 4 of 5 pieces, resumed with its directory re-bound
#    to a copy elsewhere, it reads on from the same offset and appends to the same log.
mkdir -p "$T/d1"
seq -w 1 40 | tr -d '\n' >"$T/d1/input"
cp -r "$T/d1" "$T/dref"
"$SHOAL" run --dir "$T/dref::data" "$W" files data 99 >"$T/fref" 2>&1
"$SHOAL" run --dir "$T/d1::data" --snapshot-on-exit "$T/f.act" "$W" files data 3 >"$T/f1" 2>&1; rc1=$?
cp -r "$T/d1" "$T/d2"
rm -rf "$T/d1"
"$SHOAL" resume --dir "$T/d2::data" "$T/f.act" >"$T/f2" 2>&1; rc2=$?
if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && grep -q 'resumed at piece 3, monotonic clock forward' "$T/f2" &&
   [ "$(grep '^piece' "$T/f1" "$T/f2" -h)" == "$(grep '^piece' "$T/fref")" ] && cmp -s "$T/d2/log" "$T/dref/log"; then
    ok "open files: resumed in a re-bound directory, reads continue at the saved offset, appends complete the log"
else
    bad "open files: rc $rc1 $rc2"; cat "$T/f1" "$T/f2"
fi
"$SHOAL" resume "$T/f.act" >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "$T/d1" "$T/err" && ok "a saved directory that is gone is named ($(head -c 100 "$T/err"))" ||
    { bad "missing directory: rc $rc"; cat "$T/err"; }

# 6. Damaged files are refused with a message and never run.
cp "$T/c20.act" "$T/good.act"
size=$(stat -c %s "$T/good.act")
check_refused() { # name file pattern
    "$SHOAL" resume "$2" >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -eq 1 ] && grep -qi "$3" "$T/err" && ! grep -q '^step' "$T/out"; then ok "refused: $1 ($(head -c 120 "$T/err"))"
    else bad "$1: rc $rc"; cat "$T/err"; fi
}
head -c $((size / 2)) "$T/good.act" >"$T/trunc.act"; check_refused "truncated file" "$T/trunc.act" "truncated\|corrupt"
head -c 10 "$T/good.act" >"$T/tiny.act"; check_refused "10-byte file" "$T/tiny.act" "not a Shoal actor file"
printf 'hello' >"$T/text.act"; check_refused "not an actor file" "$T/text.act" "not a Shoal actor file"
for off in 20 $((size / 3)) $((size - 100)); do
    cp "$T/good.act" "$T/flip.act"
    printf '\xff' | dd of="$T/flip.act" bs=1 seek=$off conv=notrunc status=none
    check_refused "byte $off changed" "$T/flip.act" "corrupt\|checksum\|truncated"
done
cat "$T/good.act" "$T/good.act" >"$T/double.act"; check_refused "trailing garbage" "$T/double.act" "after the last section"
check_refused "missing file" "$T/nope.act" "cannot open"
"$SHOAL" resume --env A=B "$T/good.act" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q "environment is saved" "$T/err" && ok "--env on resume is a usage error" || { bad "--env: rc $rc"; cat "$T/err"; }
"$SHOAL" resume --info "$T/good.act" >"$T/info" 2>&1 && grep -q 'by checkpoint' "$T/info" && ok "--info describes the file" ||
    { bad "--info"; cat "$T/info"; }

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all actor checks passed"
