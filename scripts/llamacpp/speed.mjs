import {getLlama} from "node-llama-cpp";
const [modelPath, prompt, nGen, threads] = [process.argv[2], process.argv[3], +process.argv[4], +process.argv[5]];
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: 512, threads, batchSize: 512});
const seq = context.getSequence();
const tokens = [model.tokens.bos, ...model.tokenize(prompt, false)];
const out = [];
let t0 = performance.now(), tFirst = 0;
for await (const tok of seq.evaluate(tokens, {temperature: 0})) {
  if (out.length === 0) tFirst = performance.now();
  out.push(tok);
  if (out.length >= nGen) break;
}
const t1 = performance.now();
console.log(JSON.stringify({prompt_tokens: Array.from(tokens), tokens: out, prompt_ms: tFirst - t0, decode_tps: (out.length - 1) / ((t1 - tFirst) / 1000)}));
