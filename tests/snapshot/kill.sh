#!/usr/bin/env bash
# Crash safety: kill (SIGKILL) a process that keeps saving two different snapshots over one file, at 100
# random moments; after each kill the file must be byte-identical to one of the two complete snapshots
# (never torn, never empty), and it must restore. Usage: kill.sh KILL_WRITER
set -u
W=$1
M=${SHOAL_MODELS:-../shared/models}/stories260K/stories260K.bin
[ -f "$M" ] || { echo "SKIP: $M not found"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$W" "$M" ref "$T/a.ref" "$T/b.ref" || { echo "FAIL: cannot write the references"; exit 1; }
cmp -s "$T/a.ref" "$T/b.ref" && { echo "FAIL: the two references are the same"; exit 1; }
cp "$T/a.ref" "$T/snap.st"
na=0; nb=0; torn=0; tmps=0
for i in $(seq 1 100); do
  rm -f "$T/snap.st.ready"
  "$W" "$M" loop "$T/snap.st" &
  pid=$!
  while [ ! -e "$T/snap.st.ready" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.002; done
  # 0 to 40 ms into the saves (each is a write of ~1 MB, fsync, rename, fsync of the directory).
  sleep "0.0$(printf '%02d' $(( RANDOM % 40 )))$(( RANDOM % 10 ))"
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null
  if cmp -s "$T/snap.st" "$T/a.ref"; then na=$((na + 1))
  elif cmp -s "$T/snap.st" "$T/b.ref"; then nb=$((nb + 1))
  else torn=$((torn + 1)); echo "FAIL: kill $i left a file that is neither snapshot ($(stat -c %s "$T/snap.st") bytes)"
  fi
  # A kill before the rename leaves the writer's temporary behind (never the target): count and clear.
  for f in "$T"/snap.st.tmp-*; do [ -e "$f" ] && { tmps=$((tmps + 1)); rm -f "$f"; }; done
done
echo "100 kills: the file was snapshot A $na times, B $nb times, torn $torn; $tmps kills landed before a rename (temporary left)"
# The survivor restores (its checksum holds).
"$SHOAL" generate -m "$M" --tokenizer "$(dirname "$M")/tok512.bin" -n 3 --temp 0 --prompt-ids 5 --load-session "$T/snap.st" \
  >/dev/null 2>"$T/err" || { echo "FAIL: the surviving snapshot does not restore: $(cat "$T/err")"; exit 1; }
[ "$torn" -eq 0 ] || exit 1
[ $((na + nb)) -eq 100 ] || exit 1
echo "ok"
