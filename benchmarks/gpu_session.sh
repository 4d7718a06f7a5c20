#!/usr/bin/env bash
# Everything a session with a lent GPU should run, as one prepared script (about 5 minutes on one H200):
# the GPU tests (`pytest -m gpu`: ResNeXt-50 steps in fp32/bf16/fp16, a short glt train, the feature store
# under autocast against the CPU store), the training-step throughput (benchmarks/gpu_smoke.sh), and the
# feature-store throughput of ResNet-50 and ViT-B/16 (benchmarks/feature_store.py). Figures go to $OUT.
#   OUT=/tmp/gpu bash benchmarks/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-${TMPDIR:-/tmp}/glt-gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
python -m pytest -q -m gpu tests/test_gpu_smoke.py -p no:cacheprovider 2>&1 | tail -20 > "$OUT/pytest_gpu.txt"
STEPS=100 bash benchmarks/gpu_smoke.sh > "$OUT/gpu_smoke.txt" 2>&1
python benchmarks/feature_store.py --device cuda --batch-size 256 --batches 10 > "$OUT/feature_store.txt" 2>&1
tail -n 5 "$OUT"/*.txt
