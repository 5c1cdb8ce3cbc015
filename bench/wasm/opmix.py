#!/usr/bin/env python3
"""opmix.py: the dynamic Wasm instruction mix of a wasm32-wasi program, for tuning the interpreter.

Disassembles the module (wasm2wat), puts an i64 counter at the head of every basic block, reassembles
it (wat2wasm), runs it on Node.js (node:wasi) and reads the counters back. Every instruction runs as
often as its block's head, so this gives exact dynamic counts per instruction without a tracing engine.

Prints the total of executed Wasm instructions (block/loop/end/else/nop are not counted: translation
removes them), the share of each opcode, and the hottest straight-line blocks with their instructions,
which is where an interpreter spends its time and what a fused instruction would have to cover.

usage: bench/wasm/opmix.py prog.wasm [--blocks N] [--ops N] [-- guest args...]
Needs wabt (wasm2wat, wat2wasm) and node.
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile

STRUCTURAL = {"block", "loop", "else", "end", "nop"}
# Instructions after which a new block starts (besides the structural ones).
BREAKS = {"br", "br_if", "br_table", "return", "unreachable", "if"}
RUNNER = r"""
import { readFile, writeFile } from 'node:fs/promises';
import process from 'node:process';
import { WASI } from 'node:wasi';
const [file, out, ...args] = process.argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env: {}, preopens: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
const code = wasi.start(instance);
const counts = {};
for (const [name, value] of Object.entries(instance.exports))
  if (name.startsWith('__opmix_')) counts[name.slice(8)] = value.value.toString();
await writeFile(out, JSON.stringify(counts));
process.exit(code);
"""


def strip_comments(line):
    line = re.sub(r"\(;.*?;\)", "", line)
    return line.split(";;", 1)[0].rstrip()


def instrument(wat):
    """Returns (new text, sites): sites[i] = (function, [instruction texts]) for the block counted by
    counter i."""
    out, sites = [], []
    func = None
    depth = 0
    leader = False
    for raw in wat.split("\n"):
        line = strip_comments(raw)
        if func is None:
            m = re.match(r"\s*\(func (\$\S+|\(;\d+;\))?", raw)
            if m and not raw.lstrip().startswith("(import"):
                func = m.group(1) or "func[%d]" % len(sites)
                depth = line.count("(") - line.count(")")
                leader = True
                if depth <= 0:
                    func = None
            out.append(raw)
            continue
        stripped = line.strip()
        balance = line.count("(") - line.count(")")
        closes = depth + balance <= 0
        text = stripped.rstrip(")").strip() if closes else stripped
        op = text.split()[0] if text else ""
        if stripped.startswith("(local"):
            out.append(raw)
        elif op and op not in STRUCTURAL:
            if leader:
                n = len(sites)
                sites.append((func, []))
                g = "$__opmix_%d" % n
                out.append("global.get %s i64.const 1 i64.add global.set %s" % (g, g))
                leader = False
            sites[-1][1].append(text)
            out.append(raw)
            if op in BREAKS:
                leader = True
        else:
            out.append(raw)
            if op in STRUCTURAL:
                leader = True
        depth += balance
        if closes:
            func = None
    text = "\n".join(out).rstrip()
    if not text.endswith(")"):
        raise SystemExit("opmix: unexpected wasm2wat output")
    extra = "".join('\n  (global $__opmix_%d (mut i64) (i64.const 0))\n  (export "__opmix_%d" (global $__opmix_%d))'
                    % (i, i, i) for i in range(len(sites)))
    return text[:-1] + extra + ")\n", sites


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wasm")
    ap.add_argument("--blocks", type=int, default=8, help="hottest blocks to list")
    ap.add_argument("--ops", type=int, default=16, help="opcodes to list")
    argv = sys.argv[1:]
    guest = argv[argv.index("--") + 1:] if "--" in argv else []
    a = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    a.args = guest
    with tempfile.TemporaryDirectory() as tmp:
        wat = subprocess.run(["wasm2wat", a.wasm], check=True, capture_output=True, text=True).stdout
        new, sites = instrument(wat)
        with open(os.path.join(tmp, "m.wat"), "w") as f:
            f.write(new)
        subprocess.run(["wat2wasm", os.path.join(tmp, "m.wat"), "-o", os.path.join(tmp, "m.wasm")], check=True)
        with open(os.path.join(tmp, "run.mjs"), "w") as f:
            f.write(RUNNER)
        counts_file = os.path.join(tmp, "counts.json")
        r = subprocess.run(["node", "--no-warnings", "--single-threaded-gc", os.path.join(tmp, "run.mjs"),
                            os.path.join(tmp, "m.wasm"), counts_file] + a.args,
                           stdout=subprocess.DEVNULL)
        if r.returncode != 0:
            raise SystemExit("opmix: the guest exited with %d" % r.returncode)
        with open(counts_file) as f:
            counts = {int(k): int(v) for k, v in json.load(f).items()}

    ops = collections.Counter()
    blocks = []
    for i, (func, instrs) in enumerate(sites):
        c = counts.get(i, 0)
        if not c:
            continue
        for t in instrs:
            ops[t.split()[0]] += c
        blocks.append((c * len(instrs), c, func, instrs))
    total = sum(ops.values())
    folded = sum(c for o, c in ops.items() if o == "local.get" or o.endswith(".const"))
    print("%s %s: %d Wasm instructions executed; %d (%.0f%%) are local.get or *.const" %
          (os.path.basename(a.wasm), " ".join(a.args), total, folded, 100.0 * folded / max(total, 1)))
    print("opcodes: " + ", ".join("%s %.1f%%" % (o, 100.0 * c / total) for o, c in ops.most_common(a.ops)))
    blocks.sort(reverse=True)
    for weight, c, func, instrs in blocks[:a.blocks]:
        print("\n%.1f%% in %s: %d instructions x %d runs" % (100.0 * weight / total, func, len(instrs), c))
        print("   " + " | ".join(instrs))


if __name__ == "__main__":
    main()
