#!/usr/bin/env bash
# Every method of the zoo and its IFL combinations on ColorDigits-GLT, three seeds, one report
# (docs/results.md).   bash benchmarks/zoo_sweep.sh [OUT] [extra KEY=VALUE overrides...]
set -euo pipefail
OUT=${1:-runs/zoo}
shift || true
BENCH=$OUT/benchmark
[ -f "$BENCH/manifest.json" ] || glt build digits --out "$BENCH"
METHODS=ce,focal,blsoftmax,logit_adj,logit_adj_loss,ldam,mixup,randaug,crt,lws,tau_norm,tde,bbn,ride,tade,lff
METHODS=$METHODS,ifl,ifl+ce,ifl+crt,ifl+lws,ifl+logit_adj,ifl+mixup,ifl+randaug,ifl+tade,ifl+ride,ifl+ldam
start=$(date +%s)
glt sweep --benchmark "$BENCH" --methods "$METHODS" --seeds 0,1,2 --out "$OUT" \
  --title "Every method on ColorDigits-GLT" progress=false "$@"
python "$(dirname "$0")/results_doc.py" "$OUT" --wall-seconds $(( $(date +%s) - start ))
