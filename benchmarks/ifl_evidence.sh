#!/usr/bin/env bash
# IFL evidence on ColorDigits-GLT (docs/ifl.md): ce, blsoftmax, ifl (IFL + Balanced Softmax), ifl+ce and
# irm over three seeds, IFL also with the original 2N-sample budget, then one report.
#   bash benchmarks/ifl_evidence.sh [OUT] [extra KEY=VALUE overrides...]
set -euo pipefail
OUT=${1:-runs/ifl-evidence}
shift || true
BENCH=$OUT/benchmark
[ -f "$BENCH/manifest.json" ] || glt build digits --out "$BENCH"
start=$(date +%s)
glt sweep --benchmark "$BENCH" --methods ce,blsoftmax,ifl,ifl+ce,irm --seeds 0,1,2 --out "$OUT" \
  --title "IFL on ColorDigits-GLT (matched budget)" progress=false "$@"
glt sweep --benchmark "$BENCH" --methods ifl --seeds 0,1,2 --out "$OUT/original-budget" \
  --title "IFL with the original 2N budget" progress=false wrapper_args.budget=original "$@"
echo "wall time: $(( $(date +%s) - start )) s"
