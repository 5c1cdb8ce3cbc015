// node_wasi.mjs: runs a wasm32-wasi command on Node.js's V8 through node:wasi, as a baseline for
// `shoal run`. Usage: node --no-warnings --single-threaded-gc node_wasi.mjs prog.wasm [args...].
// Exit status: the guest's.
// --single-threaded-gc: node 20.20 (Debian 12) segfaults at exit, in interpreted JS, after any WASI
// guest whose memory grew past ~35 MiB, and concurrent GC is the trigger: a guest that mallocs 64 MiB
// crashed in 6 of 6 runs without the flag and in 0 of 6 with it. Little garbage is made here, so the
// flag does not change Wasm speed. The guest gets no preopened directories and an empty environment.
import { readFile } from 'node:fs/promises';
import process from 'node:process';
import { WASI } from 'node:wasi';

const [file, ...args] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node node_wasi.mjs prog.wasm [args...]\n');
  process.exit(2);
}
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env: {}, preopens: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exit(wasi.start(instance));
