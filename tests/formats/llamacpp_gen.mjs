// Greedy generation with llama.cpp (npm node-llama-cpp, prebuilt CPU build) from prompt token ids, to check
// that GGUF files written by `shoal convert` load there and compute what Shoal computes.
// usage: node llamacpp_gen.mjs NODE_MODULES_DIR MODEL.gguf N_TOKENS ID...   -> prints the generated ids
import path from "node:path";
const [nm, modelPath, n, ...ids] = process.argv.slice(2);
const {getLlama} = await import(path.join(nm, "node-llama-cpp", "dist", "index.js"));
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: 256, threads: 1});
const seq = context.getSequence();
const out = [];
for await (const t of seq.evaluate(ids.map(Number), {temperature: 0})) {
    out.push(t);
    if (out.length >= Number(n)) break;
}
console.log(out.join(" "));
await context.dispose();
await model.dispose();
