#!/usr/bin/env bash
# IFL evidence on ColorDigits-GLT (docs/ifl.md): ce, blsoftmax, ifl (IFL + Balanced Softmax), ifl+ce and
# irm over three seeds, then the analyses: IFL with the original 2N-sample budget, environments only, the
# center loss only, and Balanced Softmax trained on as many samples as the 2N budget (24 epochs).
#   bash benchmarks/ifl_evidence.sh [OUT] [extra KEY=VALUE overrides...]
set -euo pipefail
OUT=${1:-runs/ifl-evidence}
shift || true
BENCH=$OUT/benchmark
[ -f "$BENCH/manifest.json" ] || glt build digits --out "$BENCH"
start=$(date +%s)
sweep() {  # sweep FOLDER METHODS TITLE OVERRIDES...
  local folder=$1 methods=$2 title=$3
  shift 3
  glt sweep --benchmark "$BENCH" --methods "$methods" --seeds 0,1,2 --out "$folder" --title "$title" progress=false "$@"
}
sweep "$OUT" ce,blsoftmax,ifl,ifl+ce,irm "IFL on ColorDigits-GLT (matched budget)" "$@"
sweep "$OUT/original-budget" ifl "IFL with the original 2N budget" wrapper_args.budget=original "$@"
sweep "$OUT/environments-only" ifl "IFL, environments only" "wrapper_args.alphas=[0,0,0]" "$@"
sweep "$OUT/center-loss-only" ifl "IFL, center loss only" wrapper_args.env_rule=uniform "$@"
sweep "$OUT/blsoftmax-24-epochs" blsoftmax "Balanced Softmax, 24 epochs" epochs=24 "$@"
echo "wall time: $(( $(date +%s) - start )) s"
