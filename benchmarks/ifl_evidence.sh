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
for seed in 0 1 2; do
  for method in ce blsoftmax ifl ifl+ce irm; do
    glt run --benchmark "$BENCH" --method "$method" --seed "$seed" --out "$OUT/runs/$method/seed$seed" \
      --resume progress=false "$@"
  done
  glt run --benchmark "$BENCH" --method ifl --seed "$seed" --out "$OUT/runs-original-budget/ifl/seed$seed" \
    --resume progress=false wrapper_args.budget=original "$@"
done
glt report "$OUT/runs" --out "$OUT/report" --title "IFL on ColorDigits-GLT (matched budget)"
glt report "$OUT/runs-original-budget" "$OUT/runs/blsoftmax" --out "$OUT/report-original-budget" \
  --title "IFL with the original 2N budget vs Balanced Softmax"
echo "wall time: $(( $(date +%s) - start )) s"
