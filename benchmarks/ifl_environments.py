"""IFL environment rebuild: the vectorised rule vs the straightforward per-class loop (docs/ifl.md, "Weights"), on
1,000,000 samples in 1,000 classes, in one run (best of 3 for ours, one run of the loop).

    python benchmarks/ifl_environments.py
"""

from __future__ import annotations

import time

import numpy as np
import torch

from glt.methods.environments import pareto_weights


def per_class_loop(scores, labels, num_classes, tg_scale=4.0):
    """The original's per-class implementation, on torch tensors."""
    out = torch.zeros(len(scores))
    s_all = torch.from_numpy(scores).float()
    for c in range(num_classes):
        idx = torch.from_numpy(np.flatnonzero(labels == c))
        n = len(idx)
        if n < 5:
            out[idx] = 1.0 / max(n, 1)
            continue
        s = s_all[idx]
        s = s - s.min()
        s = s / (s.max() + 1e-9)
        w = (1.0 - s).abs() + 1e-5
        head = torch.topk(w, k=int(n * 0.8), largest=False)[0].mean().item()
        tail = torch.topk(w, k=int(n * 0.2), largest=True)[0].mean().item()
        scale = tail / head + 1e-5
        gamma = torch.tensor(np.log(tg_scale) / np.log(scale)).clamp(1, 10)
        w = w**gamma + 1e-12
        out[idx] = w / w.sum()
    return out.numpy()


def main():
    rng = np.random.default_rng(0)
    n, c = 1_000_000, 1000
    labels = rng.integers(0, c, n)
    scores = rng.beta(2.0, 0.5, n)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        ours = pareto_weights(scores, labels, c)
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    ref = per_class_loop(scores, labels, c)
    loop = time.perf_counter() - t
    print(f"vectorised: {min(times):.3f} s   per-class loop: {loop:.2f} s   ratio {loop / min(times):.1f}x")
    print(f"max abs difference (float32 loop): {np.abs(ours - ref).max():.2e}")


if __name__ == "__main__":
    main()
