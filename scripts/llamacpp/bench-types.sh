#!/usr/bin/env bash
# Side by side with llama.cpp on every weight type: prompt and decode tok/s
# at 1 and 2 threads, Agora and llama.cpp interleaved, best of RUNS (the
# median too), as a markdown table on stdout (progress on stderr).
#
#   scripts/llamacpp/bench-types.sh [RUNS] [TYPES...]
#
# Needs node-llama-cpp@3.22.1 installed in $LLAMACPP_DIR (default
# /tmp/llamacpp; see README.md) and writes models to $MODELS (default
# /tmp/agora-bench-models). Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
shift || true
types=("$@")
[ ${#types[@]} -gt 0 ] || types=(f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k q4_k_m q5_k_m)
lc=${LLAMACPP_DIR:-/tmp/llamacpp}
models=${MODELS:-/tmp/agora-bench-models}
mkdir -p "$models"
cp scripts/llamacpp/speed.mjs "$lc/"
go build -o "$models/agora" ./cmd/agora
P="once upon a time there was a small robot that wanted to sing. it lived in a quiet town and every day it listened to the birds, the rain and the people in the market. one morning it decided to learn a song of its own, so it asked the old musician who played by the river"

# best and median of a list of numbers
stats() { python3 -c 'import sys,statistics as s; v=[float(x) for x in sys.argv[1:]]; print("%.0f (%.0f)" % (max(v), s.median(v)))' "$@"; }
ratio() { python3 -c 'import sys; print("%.0f %%" % (100*float(sys.argv[1])/float(sys.argv[2])))' "$1" "$2"; }
best() { python3 -c 'import sys; print(max(float(x) for x in sys.argv[1:]))' "$@"; }

echo "| weights | threads | Agora prompt | llama.cpp prompt | ratio | Agora decode | llama.cpp decode | ratio |"
echo "|---|---|---|---|---|---|---|---|"
for t in "${types[@]}"; do
  m="$models/m110_$t.gguf"
  [ -f "$m" ] || "$models/agora" model new --dim 768 --layers 12 --heads 12 --ffn 2048 --vocab 32000 --tied --type "$t" -o "$m" >/dev/null
  for th in 1 2; do
    ap=() ad=() lp=() ld=()
    for r in $(seq "$runs"); do
      echo "$t threads=$th run $r/$runs" >&2
      out=$(GOMAXPROCS=$th "$models/agora" generate --model "$m" --prompt "$P" --max-tokens 64 --threads "$th" --json)
      ap+=("$(jq -r .prompt_tokens_per_second <<<"$out")")
      ad+=("$(jq -r .decode_tokens_per_second <<<"$out")")
      out=$(cd "$lc" && node speed.mjs "$m" "$P" 64 "$th")
      lp+=("$(jq -r '(.prompt_tokens|length) / .prompt_ms * 1000' <<<"$out")")
      ld+=("$(jq -r .decode_tps <<<"$out")")
    done
    echo "| $t | $th | $(stats "${ap[@]}") | $(stats "${lp[@]}") | $(ratio "$(best "${ap[@]}")" "$(best "${lp[@]}")") | $(stats "${ad[@]}") | $(stats "${ld[@]}") | $(ratio "$(best "${ad[@]}")" "$(best "${ld[@]}")") |"
  done
done
