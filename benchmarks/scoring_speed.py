"""Scoring speed: `glt.evaluation.evaluate` on 1,000,000 predictions over 1,000 classes with frequency
and attribute breakdowns (best of 5), next to sklearn's precision_score on the same input (one run).

    python benchmarks/scoring_speed.py
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.metrics import precision_score

from glt.evaluation import evaluate


def best_of(fn, k=5):
    times = []
    for _ in range(k):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    rng = np.random.default_rng(0)
    n, c = 1_000_000, 1000
    labels = rng.integers(0, c, n)
    preds = np.where(rng.random(n) < 0.5, labels, rng.integers(0, c, n))
    freq = (labels * 3 // c).astype(np.int8)
    attr = rng.integers(0, 3, n).astype(np.int16)
    ours = best_of(lambda: evaluate(labels, preds, c, freq, attr, 3))
    sk = best_of(lambda: precision_score(labels, preds, average="macro", zero_division=0), k=1)
    print(f"evaluate (accuracy, precision, f1, by frequency, by attribute, per class): {ours * 1000:.1f} ms")
    print(f"sklearn macro precision alone: {sk * 1000:.1f} ms  (ratio {sk / ours:.1f}x)")


if __name__ == "__main__":
    main()
