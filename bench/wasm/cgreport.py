#!/usr/bin/env python3
"""cgreport.py: reads a callgrind profile of `shoal run` (made by profile.sh) for the benchmark report.

  cgreport.py lines FILE.cg N          the N hottest source lines by self cost, with their text
  cgreport.py dispatch FILE.cg BINARY  how many times the interpreter dispatched: executions of the
                                       indirect jumps in the function `run` of BINARY (the profile must
                                       be made with --dump-instr=yes)

The profile must be written with --compress-strings=no --compress-pos=no.
"""
import collections
import re
import subprocess
import sys


def parse(path):
    """Yields (object file, source file, function, position fields, Ir) for every self-cost line."""
    ob = fl = fn = ""
    skip_next = False  # the cost line after calls= is the callee's inclusive cost, not self cost
    with open(path) as f:
        for line in f:
            if line.startswith("ob="):
                ob = line[3:].strip()
            elif line.startswith(("fl=", "fi=", "fe=")):
                fl = line[3:].strip()
            elif line.startswith("fn="):
                fn = line[3:].strip()
            elif line.startswith("calls="):
                skip_next = True
            elif line[:1].isdigit() or line.startswith("0x"):
                parts = line.split()
                if skip_next:
                    skip_next = False
                    continue
                if len(parts) >= 2:
                    yield ob, fl, fn, parts[:-1], int(parts[-1])


def real_path(fl):
    # callgrind glues the compile directory and an absolute DWARF path together with "//".
    return "/" + fl.rsplit("//", 1)[1] if "//" in fl else fl


def lines(path, top):
    cost = collections.Counter()
    fn_cost = collections.Counter()
    total = 0
    for _, fl, fn, pos, n in parse(path):
        cost[(fl, int(pos[-1]))] += n
        fn_cost[fn] += n
        total += n
    if not total:
        return
    print("top functions: " + ", ".join("%s %.1f%%" % (f, 100.0 * c / total) for f, c in fn_cost.most_common(6)))
    src = {}
    for (fl, ln), c in cost.most_common(top):
        if fl not in src:
            try:
                with open(real_path(fl)) as f:
                    src[fl] = f.read().split("\n")
            except OSError:
                src[fl] = []
        text = src[fl][ln - 1].strip() if 0 < ln <= len(src[fl]) else ""
        short = "/".join(fl.split("/")[-2:])
        print("%5.1f%%  %s:%d  %s" % (100.0 * c / total, short, ln, text[:100]))


def dispatch(path, binary):
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary], check=True,
                         capture_output=True, text=True).stdout
    jumps, inside = set(), False
    for line in dis.split("\n"):
        m = re.match(r"^([0-9a-f]+) <([^>]+)>:", line)
        if m:
            inside = m.group(2) == "run" or m.group(2).startswith("run.")
            continue
        if inside:
            m = re.match(r"^\s*([0-9a-f]+):\s+(?:notrack\s+)?jmp\s+\*", line)
            if m:
                jumps.add(int(m.group(1), 16))
    if not jumps:
        sys.exit("cgreport: no indirect jumps found in run() of %s" % binary)
    count = 0
    for ob, _, fn, pos, n in parse(path):
        if (fn == "run" or fn.startswith("run.") or fn.startswith("run'")) and pos[0].startswith("0x"):
            if int(pos[0], 16) in jumps:
                count += n
    print(count)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "lines":
        lines(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "dispatch":
        dispatch(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
