#!/usr/bin/env bash
# Every method of the zoo and its IFL combinations on ColorDigits-GLT, three seeds, one report
# (docs/results.md).   bash benchmarks/zoo_sweep.sh [OUT] [extra KEY=VALUE overrides...]
# The method list is the registry's (docs/adding-a-method.md): every base method, `ifl` (IFL around its
# default base) and ifl+<method> for every other method IFL can wrap.
set -euo pipefail
OUT=${1:-runs/zoo}
shift || true
BENCH=$OUT/benchmark
[ -f "$BENCH/manifest.json" ] || glt build digits --out "$BENCH"
METHODS=$( { python -m glt.cli.methods --names; echo ifl; python -m glt.cli.methods --combinations ifl; } | paste -sd, -)
start=$(date +%s)
glt sweep --benchmark "$BENCH" --methods "$METHODS" --seeds 0,1,2 --out "$OUT" \
  --title "Every method on ColorDigits-GLT" progress=false "$@"
python "$(dirname "$0")/results_doc.py" "$OUT" --wall-seconds $(( $(date +%s) - start ))
