#!/usr/bin/env bash
# GPU smoke test, a few minutes on one modern GPU: 200 training steps each of ResNeXt-50 at 112 px,
# batch 128, in fp32, bf16 autocast and fp16 autocast + GradScaler (channels_last, synthetic data on the
# GPU), printing images/s and peak memory, then a short `glt train` (2 epochs of 8192 synthetic 112 px
# JPEGs, amp=bf16, channels_last=true) against the raw bf16 figure.
#
#   benchmarks/gpu_smoke.sh                        # defaults
#   benchmarks/gpu_smoke.sh --compile --precisions bf16
#   STEPS=400 BATCH=256 benchmarks/gpu_smoke.sh
#   benchmarks/gpu_smoke.sh --device cpu --steps 3 # dry run without a GPU
#
# Any other option of benchmarks/gpu_smoke.py (--help) is passed through. Runs from a checkout even
# without `pip install -e .` (src/ is put on PYTHONPATH).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
args=(--steps "${STEPS:-200}")
if [[ -n "${BATCH:-}" ]]; then args+=(--batch "$BATCH"); fi
exec python benchmarks/gpu_smoke.py "${args[@]}" "$@"
