#!/usr/bin/env bash
# Every method of the zoo and its IFL combination on ColorDigits-GLT, three seeds, one report
# (docs/results.md).   bash benchmarks/zoo_sweep.sh [OUT] [extra KEY=VALUE overrides...]
set -euo pipefail
OUT=${1:-runs/zoo}
shift || true
BENCH=$OUT/benchmark
[ -f "$BENCH/manifest.json" ] || glt build digits --out "$BENCH"
METHODS="ce focal blsoftmax logit_adj logit_adj_loss ldam mixup randaug crt lws tau_norm tde bbn ride tade lff
         ifl ifl+ce ifl+crt ifl+lws ifl+logit_adj ifl+mixup ifl+randaug ifl+tade ifl+ride ifl+ldam"
start=$(date +%s)
for seed in 0 1 2; do
  for method in $METHODS; do
    glt run --benchmark "$BENCH" --method "$method" --seed "$seed" --out "$OUT/runs/$method/seed$seed" \
      --resume progress=false "$@"
  done
done
glt report "$OUT/runs" --out "$OUT/report" --title "Every method on ColorDigits-GLT"
echo "wall time: $(( $(date +%s) - start )) s"
