#!/bin/bash
# KV prefix reuse: a 5-turn chat (examples/chat) re-sends its whole history each turn; from turn 2 on the
# output-1 counters must show the previous turn's prompt reused (prefilled = only the new tokens), and the
# conversation must be identical to one run with a fresh context every turn (--fresh: nothing reused).
. "$(dirname "$0")/common.sh"
need_guest chat
printf 'Tom had a dog\nThe dog ran away\nTom was sad\nThen the dog came back\nThey played all day\n' > "$TMP/in"
for args in "--temp 0" "--temp 0.8 --seed 3" "--temp 1 --seed 11 --template llama3"; do
    # shellcheck disable=SC2086
    "$SHOAL" run --nn-threads 1 --nn-preload "default:GGML:CPU:$M" "$SHOAL_GUEST_DIR/chat.wasm" --template plain \
        -n 16 $args --counters < "$TMP/in" > "$TMP/reuse.out" 2> "$TMP/reuse.err" || { cat "$TMP/reuse.err"; exit 1; }
    # shellcheck disable=SC2086
    "$SHOAL" run --nn-threads 1 --nn-preload "default:GGML:CPU:$M" "$SHOAL_GUEST_DIR/chat.wasm" --template plain \
        -n 16 $args --counters --fresh < "$TMP/in" > "$TMP/fresh.out" 2> "$TMP/fresh.err" || exit 1
    check "[$args] 5 turns answered" 5 "$(grep -c '^turn' "$TMP/reuse.err")"
    check "[$args] output identical to a fresh context each turn" "$(cat "$TMP/fresh.out")" "$(cat "$TMP/reuse.out")"
    check "[$args] fresh contexts reuse nothing" 5 "$(grep -c 'reused_tokens 0 ' "$TMP/fresh.err")"
    verdict=$(awk '/^turn/ { inp = $4; re = $6; pre = $8;
        if (pre != inp - re) bad = bad " turn " $2 ": prefilled != input - reused;";
        if ($2 != "1:" && re < prev_in) bad = bad " turn " $2 " reused " re " < previous prompt " prev_in ";";
        if ($2 != "1:" && pre >= inp) bad = bad " turn " $2 " prefilled everything;";
        prev_in = inp }
        END { print bad == "" ? "ok" : bad }' "$TMP/reuse.err")
    check "[$args] each turn prefills only the new tokens" ok "$verdict"
    sed 's/^/    /' "$TMP/reuse.err"
done
[ $fails -eq 0 ]
