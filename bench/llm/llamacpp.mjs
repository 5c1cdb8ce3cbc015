// llamacpp.mjs: prefill and decode speed of llama.cpp's CPU backend (node-llama-cpp's prebuilt binary) on a
// GGUF file, measured the way `shoal generate` reports it: prefill = prompt tokens / time to evaluate them,
// decode = generated tokens after the first / their time. Greedy, no sampling extras, EOS ignored.
//   node llamacpp.mjs MODEL.gguf THREADS PROMPT_IDS(comma-separated) GEN_TOKENS
import {getLlama} from "node-llama-cpp";

const [modelPath, threadsArg, promptArg, genArg] = process.argv.slice(2);
const threads = Number(threadsArg ?? 2), nGen = Number(genArg ?? 64);
const prompt = promptArg.split(",").map(Number);
const nPrompt = prompt.length;
const llama = await getLlama({gpu: false, build: "never", maxThreads: threads, logLevel: "error"});
const model = await llama.loadModel({modelPath, gpuLayers: 0, useMmap: true});
const context = await model.createContext({contextSize: nPrompt + nGen + 8, batchSize: Math.max(nPrompt, 32),
                                           threads: {ideal: threads, min: threads}, flashAttention: false});
const seq = context.getSequence();
const t0 = performance.now();
await seq.evaluateWithoutGeneratingNewTokens(prompt);
const t1 = performance.now();
let n = 0, tFirst = 0;
for await (const tok of seq.evaluate([prompt[nPrompt - 1]], {temperature: 0})) {
    void tok;
    if (n === 0) tFirst = performance.now();
    if (++n >= nGen) break;
}
const t2 = performance.now();
const prefill = nPrompt / ((t1 - t0) / 1000);
const decode = (n - 1) / ((t2 - tFirst) / 1000);
console.log(JSON.stringify({engine: "llama.cpp", prompt: nPrompt, prefill_tps: prefill, gen: n, decode_tps: decode}));
await context.dispose();
await model.dispose();
