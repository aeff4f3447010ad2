import {getLlama} from "node-llama-cpp";
const [modelPath, prompt, nGen, addBos] = [process.argv[2], process.argv[3], +process.argv[4], process.argv[5] === "1"];
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: 256, threads: 1});
const seq = context.getSequence();
const tokens = [...(addBos ? [model.tokens.bos] : []), ...model.tokenize(prompt, false)];
const out = [];
for await (const tok of seq.evaluate(tokens, {temperature: 0})) { out.push(tok); if (out.length >= nGen) break; }
console.log(JSON.stringify({p: Array.from(tokens), t: out}));
