import {getLlama} from "node-llama-cpp";
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath: process.argv[2]});
console.log(JSON.stringify(Array.from(model.tokenize(process.argv[3], false))));
