#!/usr/bin/env bash
# The foundation-model track end to end on ColorDigits-GLT, with a small "pretrained" backbone: a CNN
# trained with plain cross-entropy on Train-GLT, frozen, run once over every split into a feature store;
# then long-tailed heads (and CE / IFL on a small adapter) on the store, 3 seeds, both tracks.
# docs/foundation.md ("What ColorDigits-GLT shows") has the table and the wall times.
#   bash benchmarks/foundation_digits.sh [OUT]      (default runs/foundation-digits)
set -euo pipefail
OUT=${1:-runs/foundation-digits}
B=$OUT/benchmark
mkdir -p "$OUT"
[ -f "$B/manifest.json" ] || glt build digits --out "$B"
# 1. the backbone: CE on Train-GLT at the benchmark's defaults (12 epochs, small CNN), its best checkpoint
[ -f "$OUT/extractor/eval.json" ] || glt train --benchmark "$B" --method ce --track glt --seed 0 \
    --out "$OUT/extractor" progress=false
python - "$OUT" <<'PY'
import sys, torch
from glt.runtime.checkpoint import load_checkpoint
out = sys.argv[1]
state = load_checkpoint(f"{out}/extractor/checkpoints/best.pt")["model"]
torch.save({k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("backbone.")}, f"{out}/backbone.pt")
PY
# 2. the store: every split once through the frozen backbone
glt features --benchmark "$B" --backbone small_cnn --option width=16 --weights-file "$OUT/backbone.pt" \
    --out "$OUT/store" --no-progress
# 3. heads on the store (the backbone never trains again), and IFL / CE on a 64-wide adapter
glt sweep --benchmark "$B" --methods ce,blsoftmax,logit_adj,crt,lws,tau_norm --seeds 0,1,2 \
    --out "$OUT/heads" data.features="$OUT/store" progress=false
glt sweep --benchmark "$B" --methods ce,ifl+ce --seeds 0,1,2 --out "$OUT/adapter" \
    data.features="$OUT/store" model.options.adapter=64 progress=false
# (each sweep writes its own report: results.md in $OUT/heads and $OUT/adapter)
