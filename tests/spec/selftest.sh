#!/bin/bash
# Self-test of `shoal spec-test`: scripts with known outcomes (tests/spec/selftest/*.wast, converted with
# wabt's wast2json) must give exactly the expected counts, and malformed scripts must be reported as
# failures without crashing the runner. Skips (77) without wast2json.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v wast2json >/dev/null; then
    echo "skip: wast2json (wabt) not installed"
    exit 77
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail=0
for name in pass fail; do
    wast2json "$here/selftest/$name.wast" -o "$tmp/$name.json" || { echo "wast2json failed on $name.wast"; exit 1; }
done

# check NAME WANT_RC WANT_LINE ARGS...: runs the runner, compares exit status and the per-file line.
check() {
    local name="$1" want_rc="$2" want_line="$3"
    shift 3
    local out rc
    out="$("$SHOAL" spec-test "$@" 2>&1)"
    rc=$?
    if [ "$rc" != "$want_rc" ] || ! grep -qxF "$want_line" <<<"$out"; then
        echo "FAIL $name: exit $rc (want $want_rc), want line '$want_line'; output:"
        echo "$out"
        fail=1
    else
        echo "ok   $name: $want_line"
    fi
}

check pass 0 "pass.json: 35 passed, 0 failed, 1 skipped" --timeout 2 "$tmp" pass
check fail 1 "fail.json: 1 passed, 18 failed, 0 skipped" --timeout 1 "$tmp" fail.json
check pass-in-process 0 "pass.json: 35 passed, 0 failed, 1 skipped" --no-fork "$tmp/pass.json"

# Odd scripts: never a crash (run in-process so a crash fails the check), always a failure count.
printf '{not json' >"$tmp/garbage.json"
check garbage 1 "garbage.json: 0 passed, 1 failed, 0 skipped" --no-fork "$tmp" garbage
cat >"$tmp/odd.json" <<'JSON'
{"commands": [1, {"type": 5}, {"type": "module"}, {"type": "module", "filename": "../nope/x.wasm"},
 {"type": "assert_return", "line": 3, "action": {"type": "invoke", "field": "x", "args": "no"}},
 {"type": "register"}, {"type": "register", "as": "A", "name": 7}, {"type": "assert_trap", "action": null},
 {"type": "assert_return", "action": {"type": "get"}}, {"type": "assert_invalid", "filename": 3},
 {"type": "whatever"}, {"type": "assert_return", "action": {"type": "invoke", "field": "f", "module": "$nope"}}]}
JSON
check odd 1 "odd.json: 0 passed, 12 failed, 0 skipped" --no-fork "$tmp" odd
exit $fail
