import {getLlama} from "node-llama-cpp";
import {readFileSync} from "node:fs";
// node tok.mjs MODEL TEXT [special]: llama.cpp's token ids for TEXT (@FILE:
// the text of FILE, byte for byte); with "special", control tokens written
// in the text (<|im_start|>, <s>, ...) are parsed as such, as a rendered
// chat template needs.
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath: process.argv[2]});
const text = process.argv[3].startsWith("@") ? readFileSync(process.argv[3].slice(1), "utf8") : process.argv[3];
console.log(JSON.stringify(Array.from(model.tokenize(text, process.argv[4] === "special"))));
